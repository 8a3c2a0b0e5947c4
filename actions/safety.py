"""Red flags: urgent-care advice first, the form interrupted, staff alerted.

`RedFlagPolicy` (bot/policies.py) makes this action run right after any red-flag
message, whatever else was going on.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import BOOK_BUTTON, conversation_id, entity_values
from bot.knowledge_base import get_knowledge_base
from bot.records import save_red_flag
from bot.safety import RED_FLAG_ENTITY, describe

logger = logging.getLogger(__name__)


class ActionRedFlag(Action):
    """Urgent advice for detected red flags; the warning-sign list otherwise."""

    def name(self) -> str:
        """Action name forced by RedFlagPolicy."""
        return "action_red_flag"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[EventType]:
        """Tell the patient to get urgent care; mark the conversation for staff."""
        kb = get_knowledge_base()
        profile = kb.profile
        flags = [str(f) for f in entity_values(tracker, RED_FLAG_ENTITY)]
        events: List[EventType] = []
        if tracker.active_loop.get("name"):
            events.append(ActiveLoop(None))
        if not flags:
            # "when should I worry?": the list of warning signs, no alert
            for bubble in kb.red_flag_advice():
                dispatcher.utter_message(text=bubble)
            dispatcher.utter_message(
                text="If none of these apply, you can book a consultation to have your pain checked.",
                buttons=[BOOK_BUTTON],
            )
            return events + [SlotSet("offer", "booking")]
        dispatcher.utter_message(
            text=f"⚠️ This may be urgent. You mentioned {describe(flags)}. "
            f"This can be a sign of a serious problem that needs medical attention now."
        )
        dispatcher.utter_message(
            text=f"Please {profile.emergency_text()} or {profile.emergency_advice} right away. "
            "Don't wait for an appointment or for a reply here."
        )
        dispatcher.utter_message(
            text="I've flagged this conversation for our clinic staff. "
            f"If it's not an emergency, you can also call the clinic: {profile.phone_text()}."
        )
        text = tracker.latest_message.get("text") or ""
        saved = await save_red_flag(conversation_id(tracker), flags, text)
        if not saved:
            logger.error("red flag for %s could not be stored", conversation_id(tracker))
        return events + [
            SlotSet("red_flag", True),
            SlotSet("red_flags_detected", flags),
            SlotSet("offer", None),
            SlotSet("requested_slot", None),
        ]
