"""Session start: load the practice profile into slots that domain responses use.

Responses in domain.yml say `{practice_name}` and `{doctor}` instead of hard-coding them,
so the profile file stays the only place those details are written.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.profile import get_profile

PROFILE_SLOTS = ("practice_name", "doctor", "practice_phone", "emergency_text")
KEPT_SLOTS = ("human_takeover", "red_flag")


def profile_slots() -> List[EventType]:
    """Slot events carrying the practice details responses need."""
    profile = get_profile()
    return [
        SlotSet("practice_name", profile.practice_name),
        SlotSet("doctor", profile.doctor),
        SlotSet("practice_phone", profile.phone_text()),
        SlotSet("emergency_text", profile.emergency_text()),
    ]


class ActionSessionStart(Action):
    """Start a session with the profile slots set (and staff state carried over)."""

    def name(self) -> str:
        """Rasa's reserved name for the session-start action."""
        return "action_session_start"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[EventType]:
        """Start the session, keeping takeover/red-flag state across sessions."""
        carried = [
            SlotSet(name, tracker.get_slot(name))
            for name in KEPT_SLOTS
            if tracker.get_slot(name)
        ]
        return [SessionStarted(), *profile_slots(), *carried, ActionExecuted("action_listen")]
