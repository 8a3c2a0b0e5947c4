"""Booking handoff: the booking and call-back forms, their validation, and submission.

How the booking form behaves (domain.yml `forms`, data/rules/forms.yml):
1. asks consent to store contact details (one-line privacy notice); "no" ends the form,
   stores nothing and gives the practice's phone number instead;
2. asks, one at a time: full name, mobile (E.164), optional email, where it hurts,
   preferred times (free text is parsed and echoed back), a short description;
3. shows a summary: confirm, change a field, or cancel ("stop"/"cancel" works anywhere);
4. on confirmation stores one request (idempotent) and gives its reference, e.g. BK-7Q4M2.
Details already given in the conversation are not asked again, and "actually my number
is ..." corrects a field at any point. Each `validate_<slot>` says what was wrong and
returns `{slot: None}` so the form asks again.
"""

from __future__ import annotations

import re
import uuid
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any, Callable, Dict, List, Optional

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.answers import answer_question_in_form
from actions.common import conversation_id, latest_intent
from bot.clock import now
from bot.practical import outside_hours_warning
from bot.profile import get_profile
from bot.records import save_booking
from bot.validation import (
    TIME_OPTIONS,
    Invalid,
    ValidationError,
    clean_description,
    clean_email,
    clean_name,
    clean_pain_area,
    clean_phone,
    display_phone,
    parse_preferred_times,
)

NO_EMAIL = "none"
BOOKING_DETAIL_SLOTS = (
    "email",
    "pain_area",
    "preferred_times",
    "preferred_times_parsed",
    "symptom_description",
    "booking_confirmed",
    "booking_key",
)
# Words in a reply to the summary that say which field to change.
FIELD_WORDS = {
    "full_name": ("name",),
    "phone": ("phone", "number", "mobile"),
    "email": ("email", "e-mail"),
    "pain_area": ("area",),
    "preferred_times": ("time", "times", "day", "date"),
    "symptom_description": ("description", "problem", "symptoms"),
}
CORRECTION = re.compile(
    r"\b(?:actually|sorry|correction|wrong|change)\b.*?\b(?:my\s+)?(name|number|phone|mobile|email)\b"
    r"(?:\s+is|\s+should be|\s+to|:)?\s*(?P<value>.+)$",
    re.I,
)


def _text(tracker: Tracker) -> str:
    return tracker.latest_message.get("text") or ""


def _corrects_other(tracker: Tracker, slot: str) -> bool:
    """The message corrects a different field than `slot` (so don't read it as `slot`)."""
    correction = _correction(tracker)
    return correction is not None and slot not in correction


REJECTED = object()


def _parse(
    slot: str, parse: Callable[[Any], Any], value: Any, dispatcher: CollectingDispatcher, tracker: Tracker
) -> Any:
    """`parse(value)`, or REJECTED after saying why (the form then asks for `slot` again).

    A message that corrects a different field ("actually my number is ...") is not read as
    this field's answer either.
    """
    if _corrects_other(tracker, slot):
        return REJECTED
    try:
        return parse(value)
    except Invalid as exc:
        # not a value for this field: "no thanks" is offered the way out, a question gets
        # its answer (the form then asks again); only a real attempt at the field is told
        # what was wrong with it
        if slot in DECLINED and latest_intent(tracker) == "deny":
            dispatcher.utter_message(text=DECLINED[slot], buttons=[STOP_BUTTON])
        elif not answer_question_in_form(dispatcher, tracker):
            way_out = WAY_OUT if _answers_at_prompt(tracker, slot) >= WAY_OUT_AFTER else ""
            dispatcher.utter_message(text=f"{exc}{way_out}")
        return REJECTED


DECLINED = {
    "full_name": "No problem if you'd rather not. Without your name the clinic can't arrange this "
    "for you. Type it to go on, or stop here.",
    "phone": "No problem if you'd rather not. Without a mobile number the clinic can't contact you "
    "about this request. Type it to go on, or stop here.",
}
"""What "no" / "no thanks" at the name or number prompt gets: the choice, with a way to stop."""
STOP_BUTTON = {"title": "Stop my request", "payload": "/cancel"}
WAY_OUT_AFTER = 3  # answers at one prompt, none accepted, before the way out is offered
WAY_OUT = ' If it\'s easier, type "talk to a person" for a member of our staff, or "cancel" to stop.'


def _answers_at_prompt(tracker: Tracker, slot: str) -> int:
    """Messages the patient has sent since `slot` was first asked at this prompt (this one too)."""
    events = tracker.events
    asked = None
    for i in range(len(events) - 1, -1, -1):
        event = events[i]
        if event.get("event") == "active_loop":
            break
        if event.get("event") == "slot" and event.get("name") == "requested_slot":
            if event.get("value") != slot:
                break
            asked = i
    if asked is None:
        return 1
    return sum(1 for event in events[asked:] if event.get("event") == "user")


def _correction(tracker: Tracker) -> Optional[Dict[str, str]]:
    """{"phone": "9123 4567"} for "actually my number is 9123 4567"; else None."""
    match = CORRECTION.search(_text(tracker))
    if not match or not match.group("value").strip():
        return None
    field = match.group(1).lower()
    slot = {"name": "full_name", "email": "email"}.get(field, "phone")
    return {slot: match.group("value").strip()}


class ContactFormValidation(FormValidationAction, ABC):
    """Validation shared by the booking and call-back forms (consent, name, phone).

    Subclasses define `name()` (`validate_<form>`); the `validate_<slot>` methods below are
    picked up by rasa-sdk for every slot the form requests, and `extract_*` lets a
    correction of an earlier answer ("actually my number is ...") arrive while another
    slot is asked. This base is abstract, so rasa-sdk does not register it as an action.
    """

    @abstractmethod
    def name(self) -> str:
        """`validate_<form>`, defined by each form."""

    async def required_slots(
        self,
        domain_slots: List[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[str]:
        """No consent: nothing else is asked (and nothing will be stored)."""
        if tracker.get_slot("contact_consent") is False:
            return []
        return domain_slots

    async def _extract_correction(self, slot: str, tracker: Tracker) -> Dict[str, Any]:
        if tracker.get_slot("requested_slot") in {slot, None}:
            return {}
        correction = _correction(tracker)
        return correction if correction and slot in correction else {}

    async def extract_full_name(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """Pick up "actually my name is ..." while another field is being asked."""
        return await self._extract_correction("full_name", tracker)

    async def extract_phone(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """Pick up "actually my number is ..." while another field is being asked."""
        return await self._extract_correction("phone", tracker)

    def validate_contact_consent(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """Yes: remember when consent was given. No: say how to book by phone instead.

        Anything else re-asks the consent question (with its buttons) after a hint; a phone
        number or email typed here is kept for its own field, so it is not asked again.
        """
        if value is True:
            return {"contact_consent": True, "consent_at": now().isoformat()}
        if value is False:
            dispatcher.utter_message(
                text="No problem: I won't store any details. You can book or ask for a call by "
                f"phoning {get_profile().phone_text()}."
            )
            # a number or email typed before the answer is forgotten with the refusal
            return {"contact_consent": False, "phone": None, "email": None}
        early = _early_contact(_text(tracker), tracker)
        if early:
            kept = " and ".join(early_labels(early))
            dispatcher.utter_message(
                text=f"Thanks, I'll use that {kept} if you agree. First, please answer yes or "
                "no: may I keep your details to pass on your request?"
            )
            return {"contact_consent": None, **early}
        if answer_question_in_form(dispatcher, tracker):
            return {"contact_consent": None}
        dispatcher.utter_message(
            text="Sorry, I need a yes or no here: may I keep your name and mobile number to "
            "pass on your request? Tap a button below."
        )
        return {"contact_consent": None}

    def validate_full_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """A plausible full name."""
        name = _parse("full_name", clean_name, value, dispatcher, tracker)
        if name is REJECTED:
            return {"full_name": None}
        note = _change_note(tracker, "full_name", name, "name", name)
        if note:
            dispatcher.utter_message(text=note)
        return {"full_name": name}

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """A valid number, stored in E.164 and read back to the patient."""
        country = get_profile().country
        e164 = _parse("phone", lambda v: clean_phone(v, country), value, dispatcher, tracker)
        if e164 is REJECTED:
            return {"phone": None}
        note = _change_note(tracker, "phone", e164, "number", display_phone(e164))
        if note:
            dispatcher.utter_message(text=note)
        return {"phone": e164}


def _change_note(tracker: Tracker, slot: str, value: str, label: str, shown: str) -> Optional[str]:
    """What to say when `slot` is given while another field is asked ("actually my ...").

    Nothing when it is the answer to the question being asked, or when the value is the one
    we had already: "Thanks, I've updated..." is only said when something really changed.
    """
    if tracker.get_slot("requested_slot") == slot:
        return None
    before = _value_before_this_message(tracker, slot)
    if before == value:
        return None
    if before is None:
        return f"Thanks, I've noted your {label}: {shown}."
    return f"Thanks, I've updated your {label} to {shown}."


def _value_before_this_message(tracker: Tracker, slot: str) -> Any:
    """The slot's value as it was before the latest user message."""
    last_user = max((i for i, e in enumerate(tracker.events) if e.get("event") == "user"), default=len(tracker.events))
    value = None
    for event in tracker.events[:last_user]:
        if event.get("event") == "slot" and event.get("name") == slot:
            value = event.get("value")
    return value


def _early_contact(text: str, tracker: Tracker) -> Dict[str, str]:
    """A phone number or email typed at the consent question, in the form of its own field."""
    found: Dict[str, str] = {}
    try:
        found["phone"] = clean_phone(text, get_profile().country)
    except Invalid:
        pass
    if tracker.active_loop.get("name") == "booking_form" and "@" in text:
        try:
            email = clean_email(text)
        except Invalid:
            email = None
        if email:
            found["email"] = email
    return found


def early_labels(found: Dict[str, str]) -> List[str]:
    """How the kept values are named to the patient."""
    labels = []
    if "phone" in found:
        labels.append(f"number ({display_phone(found['phone'])})")
    if "email" in found:
        labels.append(f"email ({found['email']})")
    return labels


class ValidateCallbackForm(ContactFormValidation):
    """Call-back form: consent, name and phone only."""

    def name(self) -> str:
        """Validation action of `callback_form`."""
        return "validate_callback_form"


class ValidateBookingForm(ContactFormValidation):
    """Booking form: contact details, then what the clinic needs to arrange a visit."""

    def name(self) -> str:
        """Validation action of `booking_form`."""
        return "validate_booking_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Validate as usual; give this booking a key that makes submitting idempotent."""
        events = await super().run(dispatcher, tracker, domain)
        if not tracker.get_slot("booking_key"):
            key = f"{conversation_id(tracker)}:{uuid.uuid4().hex[:12]}"
            events.append(SlotSet("booking_key", key))
        return events

    async def extract_pain_area(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """The area named in the request that started the form ("book me in for my knee").

        Taken once, so the patient is not asked what they have just said; the summary shows
        it and "change area" asks again (the area is then never refilled from the request).
        """
        if tracker.get_slot("pain_area") or tracker.get_slot("requested_slot") == "pain_area":
            return {}
        area = area_named_in_request(tracker.events)
        return {"pain_area": area} if area else {}

    def validate_email(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """An email address, or skipped."""
        email = _parse("email", clean_email, value, dispatcher, tracker)
        return {"email": None if email is REJECTED else email or NO_EMAIL}

    def validate_pain_area(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """Lower back, knee or both.

        A question asked here ("is a knee replacement risky at 80?") names a body part too:
        it is answered first and the area asked again, rather than read as "knee". A short
        answer ("knee?", "my back") is always taken as the area.
        """
        if len(str(value or "").split()) > 3 and answer_question_in_form(dispatcher, tracker):
            return {"pain_area": None}
        area = _parse("pain_area", clean_pain_area, value, dispatcher, tracker)
        return {"pain_area": None if area is REJECTED else area}

    def validate_preferred_times(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """Keep the patient's words; echo the day/time understood from them."""
        timezone = get_profile().timezone
        times = _parse(
            "preferred_times", lambda v: parse_preferred_times(v, now(), timezone), value, dispatcher, tracker
        )
        if times is REJECTED:
            return {"preferred_times": None}
        if times.understood:
            dispatcher.utter_message(text=f"Noted: {times.understood} ({times.text}).")
        if times.iso:
            warning = outside_hours_warning(
                get_profile(), datetime.fromisoformat(times.iso), has_time=":" in (times.understood or "")
            )
            if warning:
                dispatcher.utter_message(text=warning)
        return {"preferred_times": times.text, "preferred_times_parsed": times.understood}

    def validate_symptom_description(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """A sentence or two in the patient's words."""
        text = _parse("symptom_description", clean_description, value, dispatcher, tracker)
        return {"symptom_description": None if text is REJECTED else text}

    def validate_booking_confirmed(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """Confirm, or name the field to change (it is then asked again)."""
        if _correction(tracker):
            return {"booking_confirmed": None}  # the summary is shown again, corrected
        intent = latest_intent(tracker)
        text = _text(tracker).lower()
        if intent == "affirm" or text.strip(" !.") in {"confirm", "yes", "ok", "correct"}:
            return {"booking_confirmed": True}
        for slot, words in FIELD_WORDS.items():
            if any(re.search(rf"\b{re.escape(w)}\b", text) for w in words):
                extra = {"preferred_times_parsed": None} if slot == "preferred_times" else {}
                return {slot: None, "booking_confirmed": None, **extra}
        dispatcher.utter_message(
            text="What would you like to change?",
            buttons=[
                {"title": "Name", "payload": "change name"},
                {"title": "Phone", "payload": "change phone"},
                {"title": "Email", "payload": "change email"},
                {"title": "Area", "payload": "change area"},
                {"title": "Times", "payload": "change times"},
                {"title": "Description", "payload": "change description"},
            ],
        )
        return {"booking_confirmed": None}


def area_named_in_request(events: List[Dict[str, Any]]) -> Optional[str]:
    """The area ("knee", "lower back" or "both") named in the message that started the form.

    None when that message named no area we book for, or once the area was set in this form.
    """
    started = max(
        (i for i, e in enumerate(events) if e.get("event") == "active_loop" and e.get("name") == "booking_form"),
        default=None,
    )
    if started is None:
        return None
    if any(e.get("event") == "slot" and e.get("name") == "pain_area" for e in events[started:]):
        return None
    request = next((e for e in reversed(events[:started]) if e.get("event") == "user"), None)
    if request is None:
        return None
    entities = (request.get("parse_data") or {}).get("entities") or []
    named = " ".join(str(e.get("value")) for e in entities if e.get("entity") == "body_part")
    try:
        return clean_pain_area(named) if named else None
    except Invalid:
        return None  # a hip or shoulder: the area question says what can be booked


def booking_summary(tracker: Tracker) -> str:
    """The details as the clinic will receive them."""
    email = tracker.get_slot("email")
    times = tracker.get_slot("preferred_times") or ""
    parsed = tracker.get_slot("preferred_times_parsed")
    lines = [
        "Please check your details:",
        f"• Name: {tracker.get_slot('full_name')}",
        f"• Mobile: {display_phone(tracker.get_slot('phone') or '')}",
        f"• Email: {email if email and email != NO_EMAIL else '(none)'}",
        f"• Area: {tracker.get_slot('pain_area')}",
        f"• Preferred times: {times}" + (f" ({parsed})" if parsed else ""),
        f"• Description: {tracker.get_slot('symptom_description')}",
    ]
    return "\n".join(lines)


class ActionAskBookingConfirmed(Action):
    """The summary, with confirm / change / cancel."""

    def name(self) -> str:
        """Rasa asks for `booking_confirmed` through this action."""
        return "action_ask_booking_confirmed"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Show the summary."""
        dispatcher.utter_message(
            text=booking_summary(tracker),
            buttons=[
                {"title": "✅ Confirm", "payload": "/affirm"},
                {"title": "✏️ Change something", "payload": "change something"},
                {"title": "Cancel", "payload": "/cancel"},
            ],
        )
        return []


class ActionAskPreferredTimes(Action):
    """Quick replies for common preferences; free text works too."""

    def name(self) -> str:
        """Rasa asks for `preferred_times` through this action."""
        return "action_ask_preferred_times"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Ask when suits the patient."""
        dispatcher.utter_message(
            text="When would suit you? Pick one, or type something like \"next Tuesday after 5pm\".",
            buttons=[{"title": option, "payload": option} for option in TIME_OPTIONS],
        )
        return []


class ActionSubmitBooking(Action):
    """Store the confirmed request once, and give the patient its reference."""

    def name(self) -> str:
        """Runs when the booking form completes."""
        return "action_submit_booking"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Submit, or end politely when consent was refused."""
        profile = get_profile()
        if tracker.get_slot("contact_consent") is not True or not tracker.get_slot("booking_confirmed"):
            return [SlotSet("contact_consent", None), *_reset()]
        email = tracker.get_slot("email")
        sender = conversation_id(tracker)
        try:
            saved = await save_booking(
                conversation_id=sender,
                idempotency_key=tracker.get_slot("booking_key") or f"{sender}:fallback",
                full_name=tracker.get_slot("full_name"),
                phone_e164=tracker.get_slot("phone"),
                email=None if email in (None, NO_EMAIL) else email,
                body_part=tracker.get_slot("pain_area"),
                preferred_times=tracker.get_slot("preferred_times"),
                preferred_times_parsed=tracker.get_slot("preferred_times_parsed"),
                description=tracker.get_slot("symptom_description"),
                consent_given_at=_consent_time(tracker),
                channel=sender.split(":", 1)[0] if ":" in sender else "rest",
            )
        except ValidationError as exc:
            dispatcher.utter_message(
                text=f"Sorry, I couldn't accept those details ({exc}). "
                f"Please call {profile.phone_text()} to book."
            )
            return _reset()
        if isinstance(saved, str):  # SPOOLED: kept (shared queue or disk) until the database is back
            dispatcher.utter_message(
                text="I'm sorry, I couldn't send your request just now because of a technical "
                "problem. I've kept it and it will reach the clinic as soon as the system is back, "
                f"but to be sure, please call {profile.phone_text()}."
            )
            return _reset()
        dispatcher.utter_message(
            text=f"Thank you, {tracker.get_slot('full_name')}. Your request is saved in the "
            f"{profile.practice_name} staff inbox. Your reference is {saved.reference}. "
            "Our staff will contact you to confirm a time."
        )
        dispatcher.utter_message(
            text="If your symptoms get much worse before then, or you notice warning signs, "
            "please seek urgent care.",
            buttons=[{"title": "When to get urgent help", "payload": "/ask_warning_signs"}],
        )
        return [*_reset(), SlotSet("booking_reference", saved.reference)]


class ActionCancelForm(Action):
    """"stop"/"cancel": leave the form; nothing is stored."""

    def name(self) -> str:
        """Used by the cancel rules."""
        return "action_cancel_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Deactivate any form and say what happens now."""
        if not tracker.active_loop.get("name"):
            dispatcher.utter_message(text="OK. Is there anything else I can help you with?")
            return []
        dispatcher.utter_message(
            text="OK, I've cancelled that and nothing was sent. You can ask me something else, "
            f"or call {get_profile().phone_text()} any time."
        )
        return [ActiveLoop(None), SlotSet("requested_slot", None), *_reset()]


def _consent_time(tracker: Tracker) -> Any:
    value = tracker.get_slot("consent_at")
    return datetime.fromisoformat(value) if value else now()


def _reset() -> List[EventType]:
    """Forget booking details (name, phone and consent stay for this conversation)."""
    return [SlotSet(slot, None) for slot in BOOKING_DETAIL_SLOTS]
