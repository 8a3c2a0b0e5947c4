"""Human handoff: staff reply here in opening hours; outside them, offer a call back.

A handoff request (with the last topic and, only with consent, contact details) is stored
for staff and notified. Staff take the conversation over and reply from the console
(`bot.handoff`, actions/staff.py); `HumanTakeoverPolicy` keeps the bot silent meanwhile.
The patient is promised a reply "here" only in opening hours and only on a channel a staff
reply can reach later (`bot.handoff.REPLYABLE_CHANNELS`: not the REST test channel); out of
hours nothing promises a reply in the chat.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import BOOK_BUTTON, conversation_id
from bot.clock import now
from bot.handoff import REPLYABLE_CHANNELS
from bot.profile import get_profile
from bot.records import SPOOLED, save_handoff

DEFAULT_REASON = "the patient asked to talk to a person"


def _contact(tracker: Tracker) -> Dict[str, Any]:
    """Contact details for staff, only when the patient consented to storing them."""
    if tracker.get_slot("contact_consent") is not True:
        return {}
    return {
        "contact_name": tracker.get_slot("full_name"),
        "contact_phone": tracker.get_slot("phone"),
        "contact_consented": True,
        "contact_consent_at": _consent_at(tracker),
    }


def _consent_at(tracker: Tracker) -> Optional[datetime]:
    """When the patient agreed to their contact details being stored (slot `consent_at`)."""
    value = tracker.get_slot("consent_at")
    try:
        return datetime.fromisoformat(value) if value else now()
    except (TypeError, ValueError):
        return now()


async def hand_over(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    callback_declined: bool = False,
    reason: Optional[str] = None,
) -> List[EventType]:
    """Store the handoff (or first offer a call back when staff may not be in); its events.

    Called by `action_request_human` and by the actions that hand over themselves ("no
    thanks" to the call-back offer, a second misunderstanding), so the conversation never
    runs an action no rule expects (which ended in "Sorry, I didn't get that").
    Opening hours the clinic has not confirmed are never used to say it is closed or when
    it opens: staff availability is then unknown, and the patient is offered a call back.
    """
    profile = get_profile()
    current = now()
    within = profile.open_now(current)  # None: hours not confirmed
    callback = bool(tracker.get_slot("callback_requested"))
    declined = callback_declined or bool(tracker.get_slot("callback_declined"))
    if within is not True and not callback and not declined:
        if within is None:
            intro = "I can't tell whether our staff are available right now."
        else:
            opening = profile.next_opening(current)
            intro = "Our clinic is closed right now." + (
                f" We open again {profile.when_text(opening, current)}." if opening else ""
            )
        dispatcher.utter_message(
            text=f"{intro} Would you like us to call you back? I'd need your name and mobile "
            "number.",
            buttons=[
                {"title": "Yes, call me back", "payload": "/request_callback"},
                {"title": "No, thanks", "payload": "/deny"},
            ],
        )
        kept = [SlotSet("handoff_reason", reason)] if reason else []
        return [SlotSet("offer", "callback"), *kept]
    contact = _contact(tracker) if callback else {}
    saved = await save_handoff(
        conversation_id=conversation_id(tracker),
        reason=reason or tracker.get_slot("handoff_reason") or DEFAULT_REASON,
        within_hours=within is True,
        last_topic=tracker.get_slot("last_topic"),
        callback_requested=bool(contact),
        **contact,
    )
    dispatcher.utter_message(
        text=ActionRequestHuman.message(
            within,
            bool(contact),
            saved == SPOOLED,
            tracker.get_latest_input_channel() in REPLYABLE_CHANNELS,
        ),
        buttons=[BOOK_BUTTON],
    )
    return [
        SlotSet("handoff_reason", None),
        SlotSet("callback_requested", None),
        SlotSet("callback_declined", None),
        SlotSet("offer", None),
    ]


class ActionRequestHuman(Action):
    """Hand the conversation to staff, according to opening hours."""

    def name(self) -> str:
        """Action name used by the request_human rule."""
        return "action_request_human"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[EventType]:
        """Store the handoff (or first offer a call back when the clinic is closed)."""
        return await hand_over(dispatcher, tracker)

    @staticmethod
    def message(
        within: Optional[bool], callback: bool, spooled: bool, replyable: bool = True
    ) -> str:
        """What the patient is told once the handoff is stored."""
        profile = get_profile()
        phone = profile.phone_text()
        if spooled:
            return (
                "I'm having a technical problem passing this on right now; it has been kept and "
                f"will reach our staff as soon as possible. To be sure, please call {phone}."
            )
        if callback:
            when = "when the clinic opens" if within is False else "as soon as they can"
            return f"Thank you. Our staff will call you back {when}."
        if within:
            closing: Optional[Any] = profile.closing_today(now())
            until = f" (we're open until {closing:%H:%M} today)" if closing else ""
            if not replyable:
                return (
                    f"I've asked our staff to look at this conversation shortly{until}. "
                    f"To talk to someone now, please call {phone}."
                )
            return (
                f"I've asked our staff to join this conversation. Someone will reply here "
                f"shortly{until}. You can also call {phone}."
            )
        if within is None:
            return (
                "No problem. I've left a note for our staff, who will read this conversation as "
                f"soon as they can. You can also call {phone}."
            )
        return (
            "No problem. I've left a note for our staff, who will read this conversation when "
            f"the clinic opens. You can also call {phone} during opening hours."
        )
