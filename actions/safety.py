"""Safety actions: the alert or crisis response, the screening question and its answer.

`SafetyPolicy` (bot/policies.py) makes these run first, whatever else was going on:
* `action_red_flag`: the rules found emergencies or red flags. The patient reads back only
  what they described, the advice for its tier, and that staff know; a form in progress is
  paused (its answers kept, a button to continue) and the alert is stored with its tier.
  Suicidal thoughts or self-harm get the crisis response instead of a symptom alert.
* `action_safety_screen`: the trained detector suspects a flag the rules did not confirm:
  one short question with Yes / No / Not sure.
* `action_safety_screen_answer`: a worrying answer (or "not sure", or anything unclear) gives
  the alert; a reassuring one answers the patient's original message as if asked again.
* `action_emergency_reminder`: "what should I do?" (or "should I go to hospital?", "can I
  book?") right after an alert: the alert's advice again, no new alert.
* `action_warning_signs`: "when should I worry?": the list of warning signs, no alert.
All wording comes from `bot.safety.reply` (data/safety/flags.yml and the practice profile).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ActiveLoop, EventType, SlotSet, UserUttered
from rasa_sdk.executor import CollectingDispatcher

from actions.common import BOOK_BUTTON, conversation_id, entity_values, latest_intent
from bot.profile import get_profile
from bot.records import save_red_flag
from bot.safety import RED_FLAG_ENTITY, RED_FLAG_INTENT, SUSPECT_ENTITY, get_detector, safety_text
from bot.safety.data import get_safety_data
from bot.safety.reply import (
    RESUME_BUTTONS,
    SCREEN_BUTTONS,
    Reply,
    Said,
    categories,
    compose,
    highest_tier,
    reminder,
    said_from_screen,
    screen_answer,
    screen_is_worrying,
    screening_question,
    widget_marker,
)

logger = logging.getLogger(__name__)

SCREEN_SLOT = "safety_screen"
PAUSED_SLOT = "paused_form"


def _pause_form(tracker: Tracker) -> Tuple[List[EventType], Optional[Dict[str, str]]]:
    """Stop the active form without losing its answers; the button that resumes it."""
    form = tracker.active_loop.get("name") or tracker.get_slot(PAUSED_SLOT)
    if not tracker.active_loop.get("name"):
        return [], RESUME_BUTTONS.get(form or "")
    return [ActiveLoop(None), SlotSet(PAUSED_SLOT, form)], RESUME_BUTTONS.get(form)


def _send(dispatcher: CollectingDispatcher, reply: Reply) -> None:
    """Every message of the reply carries the widget's alert marker (contract 5)."""
    marker = widget_marker(reply, get_profile())
    for index, text in enumerate(reply.texts):
        last = index == len(reply.texts) - 1
        dispatcher.utter_message(
            text=text, buttons=reply.buttons if last and reply.buttons else None, clinic=marker
        )


def _message_text(message: Dict[str, Any]) -> str:
    return safety_text(message.get("text"), message.get("metadata"))


async def _alert(
    dispatcher: CollectingDispatcher, tracker: Tracker, said: List[Said], text: str
) -> List[EventType]:
    """Speak, store and notify one alert; pause any form."""
    events, resume = _pause_form(tracker)
    reply = compose(said, get_profile(), resume_button=resume)
    _send(dispatcher, reply)
    flags = [s.flag for s in said]
    saved = await save_red_flag(
        conversation_id(tracker), flags, text,
        tier=highest_tier(flags) or "urgent", categories=categories(flags),
    )
    if not saved:
        logger.error("a safety alert could not be stored or spooled")
    return events + [
        SlotSet("red_flag", True),
        SlotSet("red_flags_detected", flags),
        SlotSet(SCREEN_SLOT, None),
        SlotSet("offer", "human" if reply.crisis else None),  # "yes" then means a person
        SlotSet("requested_slot", None),
    ]


class ActionRedFlag(Action):
    """The alert (or crisis response) for what the rules found; the warning signs otherwise."""

    def name(self) -> str:
        """Action name forced by SafetyPolicy."""
        return "action_red_flag"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[EventType]:
        """Tell the patient what to do now; mark the conversation for staff."""
        flags = [str(f) for f in entity_values(tracker, RED_FLAG_ENTITY)]
        if not flags:
            return await ActionWarningSigns().run(dispatcher, tracker, domain)
        text = _message_text(tracker.latest_message)
        found = {f.flag: f.say for f in get_detector().detect(text).findings}
        said = [Said(flag=f, say=found.get(f) or said_from_screen(f).say) for f in flags]
        return await _alert(dispatcher, tracker, said, text)


class ActionWarningSigns(Action):
    """The warning signs by urgency, from the reviewed data ("when should I worry?")."""

    def name(self) -> str:
        """Action name used by the ask_warning_signs rule."""
        return "action_warning_signs"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[EventType]:
        """List the warning signs of each tier; offer booking if none apply."""
        data = get_safety_data()
        profile = get_profile()
        for tier in ("emergency", "urgent"):
            names = [
                f.name for f in data.flags.values()
                if f.tier == tier and f.category in ("back_knee", "post_surgery")
            ]
            advice = data.tiers[tier].meaning.rstrip(".").lower()
            if tier == "emergency":
                advice = f"{profile.emergency_text()} or go to the nearest A&E now"
            dispatcher.utter_message(
                text=f"{'Get help now' if tier == 'emergency' else 'See a doctor today'} "
                f"({advice}) if you have:\n" + "\n".join(f"• {n}" for n in names)
            )
        dispatcher.utter_message(
            text="And for anyone, chest pain, difficulty breathing, signs of a stroke, a severe "
            "allergic reaction, an overdose, heavy bleeding or a collapse are emergencies. "
            "If none of these apply, you can book a consultation to have your pain checked.",
            buttons=[BOOK_BUTTON],
        )
        return [SlotSet("offer", "booking")]


class ActionEmergencyReminder(Action):
    """The alert's advice again, for "what should I do?" right after it (no new alert)."""

    def name(self) -> str:
        """Action name forced by SafetyPolicy."""
        return "action_emergency_reminder"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[EventType]:
        """Say again what the patient described and what to do now."""
        reply = reminder(tracker.get_slot("red_flags_detected") or [], get_profile())
        if not reply.texts:
            return await ActionWarningSigns().run(dispatcher, tracker, domain)
        _send(dispatcher, reply)
        return []


class ActionSafetyScreen(Action):
    """One short screening question when the detector suspects a flag."""

    def name(self) -> str:
        """Action name forced by SafetyPolicy."""
        return "action_safety_screen"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[EventType]:
        """Ask the suspected flag's question; a form waits (answers kept) until it is answered."""
        values = entity_values(tracker, SUSPECT_ENTITY)
        flag = str(values[0]) if values else ""
        if flag not in get_safety_data().flags:
            return []
        dispatcher.utter_message(text=screening_question(flag), buttons=SCREEN_BUTTONS)
        events: List[EventType] = [SlotSet(SCREEN_SLOT, flag)]
        if tracker.active_loop.get("name"):
            events += [ActiveLoop(None), SlotSet(PAUSED_SLOT, tracker.active_loop.get("name"))]
        return events


def _original_message(tracker: Tracker) -> Optional[Dict[str, Any]]:
    """The user message that led to the screening question (the one before the answer)."""
    users = [e for e in reversed(tracker.events) if e.get("event") == "user"]
    return users[1] if len(users) > 1 else None


def _without_suspicion(parse_data: Dict[str, Any]) -> Dict[str, Any]:
    parse = dict(parse_data)
    parse["entities"] = [e for e in parse.get("entities") or [] if e.get("entity") != SUSPECT_ENTITY]
    intent = parse.get("intent") or {}
    if intent.get("name") == RED_FLAG_INTENT:
        ranking = [r for r in parse.get("intent_ranking") or [] if r.get("name") != RED_FLAG_INTENT]
        parse["intent"] = ranking[0] if ranking else {"name": "nlu_fallback", "confidence": 1.0}
        parse["intent_ranking"] = ranking
    return parse


class ActionSafetyScreenAnswer(Action):
    """Alert on a worrying answer; otherwise answer the original message."""

    def name(self) -> str:
        """Action name forced by SafetyPolicy while a screening question is pending."""
        return "action_safety_screen_answer"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[EventType]:
        """Decide from the answer (see module docstring)."""
        flag = str(tracker.get_slot(SCREEN_SLOT) or "")
        original = _original_message(tracker)
        if flag not in get_safety_data().flags:
            return [SlotSet(SCREEN_SLOT, None)]
        answer = screen_answer(latest_intent(tracker), str(tracker.latest_message.get("text") or ""))
        if screen_is_worrying(flag, answer):
            text = _message_text(original or {}) or str(tracker.latest_message.get("text") or "")
            return await _alert(dispatcher, tracker, [said_from_screen(flag)], text)
        dispatcher.utter_message(text="Thank you, that's reassuring.")
        events: List[EventType] = [SlotSet(SCREEN_SLOT, None)]
        paused = tracker.get_slot(PAUSED_SLOT)
        if paused:
            events += [SlotSet(PAUSED_SLOT, None), ActiveLoop(paused)]
        if original is None:
            return events
        # answer the original message as if it had just been sent (Rasa's TwoStageFallback
        # does the same): the dialogue, and any form, picks it up from here
        return events + [
            ActionExecuted("action_listen"),
            UserUttered(
                original.get("text"),
                parse_data=_without_suspicion(original.get("parse_data") or {}),
                input_channel=original.get("input_channel"),
            ),
        ]
