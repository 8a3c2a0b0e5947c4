"""When the action server cannot be reached, the patient still gets a reply, and safety holds.

Rasa 3.6 logs "Encountered an exception while running action ..." and sends nothing: at
night a patient would be left with silence. Rasa offers no hook for this, so `install()`
wraps `RemoteAction.run` (the one place every custom action call goes through), and a
failed call is answered here, in the Rasa server:
* the safety actions (alert, crisis response, screening question and answer, reminder) run locally
  from the same reviewed data and wording (`bot.safety.reply`); the alert is stored, or
  spooled, by this process;
* a form whose validation cannot run is paused and says so, instead of keeping the
  unvalidated answers;
* a failed session start falls back to Rasa's own (the dialogue stays well formed);
* anything else gets one short apology per turn with the practice's phone number.
Rejections (forms) and successful calls are untouched. Installed by `bot.policies`, which
every model of this project loads.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, List

from rasa.core.actions.action import ActionExecutionRejection, ActionSessionStart, RemoteAction
from rasa.shared.core.constants import ACTION_SESSION_START_NAME, REQUESTED_SLOT
from rasa.shared.core.events import ActiveLoop, BotUttered, Event, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException

logger = logging.getLogger(__name__)
_INSTALLED = "_clinic_apology_installed"
DOWN = {"action_server_down": True}
SAFETY_ACTIONS = (
    "action_red_flag", "action_safety_screen", "action_safety_screen_answer", "action_emergency_reminder",
)
"""Answered by the Rasa server itself when the action server can't be reached."""


def apology() -> str:
    """What the patient reads while the action server is down."""
    from bot.profile import get_profile

    profile = get_profile()
    return (
        "Sorry, I'm having a technical problem and can't answer properly right now. Please try "
        f"again in a few minutes, or call the clinic: {profile.phone_text()}. If this is an "
        f"emergency, {profile.emergency_text()} or go to the nearest A&E."
    )


def _said_this_turn(tracker: DialogueStateTracker) -> bool:
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            return False
        if isinstance(event, BotUttered) and (event.metadata or {}).get("action_server_down"):
            return True
    return False


def _bot(text: str, buttons: Any = None, clinic: Any = None) -> BotUttered:
    data = {"buttons": buttons} if buttons else {}
    metadata = {**DOWN, "clinic": clinic} if clinic else DOWN
    return BotUttered(text=text, data=data, metadata=metadata)


async def _alert(tracker: DialogueStateTracker, said: List[Any], text: str) -> List[Event]:
    from bot.profile import get_profile
    from bot.records import save_red_flag
    from bot.safety.reply import categories, compose, highest_tier, widget_marker

    reply = compose(said, get_profile())
    marker = widget_marker(reply, get_profile())
    events: List[Event] = [
        _bot(t, reply.buttons if i == len(reply.texts) - 1 else None, marker)
        for i, t in enumerate(reply.texts)
    ]
    flags = [s.flag for s in said]
    await save_red_flag(
        tracker.sender_id, flags, text,
        tier=highest_tier(flags) or "urgent", categories=categories(flags),
    )
    if tracker.active_loop_name:
        events += [ActiveLoop(None), SlotSet("paused_form", tracker.active_loop_name)]
    return events + [
        SlotSet("red_flag", True),
        SlotSet("red_flags_detected", flags),
        SlotSet("safety_screen", None),
        SlotSet(REQUESTED_SLOT, None),
    ]


async def _safety_locally(name: str, tracker: DialogueStateTracker) -> List[Event]:
    """The safety actions, answered by the Rasa server itself."""
    from bot.profile import get_profile
    from bot.safety import RED_FLAG_ENTITY, SUSPECT_ENTITY, get_detector, safety_text
    from bot.safety.data import get_safety_data
    from bot.safety.reply import (
        SCREEN_BUTTONS,
        Said,
        reminder,
        said_from_screen,
        screen_answer,
        screen_is_worrying,
        screening_question,
        widget_marker,
    )

    message = tracker.latest_message
    text = safety_text(message.text, message.metadata) if message else ""
    entities = message.entities if message else []
    if name == "action_red_flag":
        flags = [str(e["value"]) for e in entities if e.get("entity") == RED_FLAG_ENTITY]
        found = {f.flag: f.say for f in get_detector().detect(text).findings}
        said = [Said(f, found.get(f) or said_from_screen(f).say) for f in dict.fromkeys(flags)]
        return await _alert(tracker, said, text) if said else [_bot(apology())]
    if name == "action_safety_screen":
        flag = next((str(e["value"]) for e in entities if e.get("entity") == SUSPECT_ENTITY), "")
        if flag not in get_safety_data().flags:
            return [_bot(apology())]
        return [_bot(screening_question(flag), SCREEN_BUTTONS), SlotSet("safety_screen", flag)]
    if name == "action_emergency_reminder":
        reply = reminder(tracker.get_slot("red_flags_detected") or [], get_profile())
        marker = widget_marker(reply, get_profile())
        return [_bot(t, reply.buttons if i == len(reply.texts) - 1 else None, marker)
                for i, t in enumerate(reply.texts)] or [_bot(apology())]
    flag = str(tracker.get_slot("safety_screen") or "")
    intent = (message.intent or {}).get("name") if message else None
    if flag in get_safety_data().flags and screen_is_worrying(flag, screen_answer(intent, text)):
        return await _alert(tracker, [said_from_screen(flag)], text)
    return [_bot("Thank you, that's reassuring."), _bot(apology()), SlotSet("safety_screen", None)]


def _pause_form(name: str, tracker: DialogueStateTracker) -> List[Event]:
    """Validation can't run: undo this turn's unvalidated answers and pause the form."""
    from bot.profile import get_profile
    from bot.safety.reply import RESUME_BUTTONS

    reset: List[Event] = []
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            break
        if isinstance(event, SlotSet) and event.key != REQUESTED_SLOT:
            reset.append(SlotSet(event.key, None))
    form = name[len("validate_"):]
    resume = RESUME_BUTTONS.get(form)
    return [
        _bot(
            "Sorry, I can't check your answers right now because of a technical problem, so "
            "I've paused this form and kept nothing from your last message. Please try again "
            f"in a few minutes, or call the clinic: {get_profile().phone_text()}.",
            [resume] if resume else None,
        ),
        *reset,
        SlotSet("paused_form", form),
        SlotSet(REQUESTED_SLOT, None),
        ActiveLoop(None),
    ]


def install() -> None:
    """Wrap `RemoteAction.run` once per process."""
    if getattr(RemoteAction.run, _INSTALLED, False):
        return
    original = RemoteAction.run

    @functools.wraps(original)
    async def run(self: RemoteAction, output_channel: Any, nlg: Any,
                  tracker: DialogueStateTracker, domain: Any) -> List[Event]:
        try:
            return await original(self, output_channel, nlg, tracker, domain)
        except ActionExecutionRejection:
            raise
        except RasaException as exc:
            name = self.name()
            logger.error("action server call %s failed (%s): answering locally", name, exc)
            if name in SAFETY_ACTIONS:
                return await _safety_locally(name, tracker)
            if name == ACTION_SESSION_START_NAME:  # Rasa's own session start keeps the dialogue sound
                return await ActionSessionStart().run(output_channel, nlg, tracker, domain)
            if name.startswith("validate_") and name.endswith("_form"):
                return _pause_form(name, tracker)
            return [] if _said_this_turn(tracker) else [_bot(apology())]

    setattr(run, _INSTALLED, True)
    RemoteAction.run = run  # type: ignore[method-assign]
