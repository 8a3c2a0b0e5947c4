"""A staff member joins a conversation, replies as themselves, and hands it back to the bot.

`bot.handoff` triggers the intents `staff_take`, `staff_reply` and `staff_release` through
Rasa's HTTP API (`trigger_intent` with `output_channel=latest`), with the staff member's
name (entity `staff_name`) and, for a reply, the text (`staff_text`). These actions turn
them into what the patient sees, on the channel the patient used: every message carries
the widget's `clinic` marker (`staff_joined`, `staff`, `staff_left`, with the name);
messaging channels print a staff reply as "<name> (clinic staff): <text>" themselves
(`bot.channels.markers`). Joining sets `human_takeover`, so `HumanTakeoverPolicy` keeps the
bot silent; leaving clears it.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import entity_values

TAKEOVER_SLOT = "human_takeover"
DEFAULT_STAFF_NAME = "A member of our staff"


def staff_name(tracker: Tracker) -> str:
    """The staff member's name the trigger carried (a neutral phrase if none)."""
    names = [str(v).strip() for v in entity_values(tracker, "staff_name") if str(v).strip()]
    return names[0] if names else DEFAULT_STAFF_NAME


class ActionStaffJoined(Action):
    """Silence the bot and tell the patient who has joined."""

    def name(self) -> str:
        """Action of the `staff_take` rule."""
        return "action_staff_joined"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[EventType]:
        """Set `human_takeover` and show the joined marker."""
        name = staff_name(tracker)
        dispatcher.utter_message(
            text=f"{name} from the clinic has joined the chat.",
            clinic={"kind": "staff_joined", "name": name},
        )
        return [SlotSet(TAKEOVER_SLOT, True)]


class ActionStaffLeft(Action):
    """Give the conversation back to the bot and say so."""

    def name(self) -> str:
        """Action of the `staff_release` rule."""
        return "action_staff_left"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[EventType]:
        """Clear `human_takeover` and show the left marker."""
        name = staff_name(tracker)
        dispatcher.utter_message(
            text=f"{name} has left; the assistant is back.",
            clinic={"kind": "staff_left", "name": name},
        )
        return [SlotSet(TAKEOVER_SLOT, False)]


class ActionRelayStaffReply(Action):
    """Say exactly what the staff member wrote, marked as theirs."""

    def name(self) -> str:
        """Action of the `staff_reply` rule."""
        return "action_relay_staff_reply"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[EventType]:
        """Utter the text with the `staff` marker; nothing when the trigger had no text."""
        texts = [str(v) for v in entity_values(tracker, "staff_text") if str(v).strip()]
        if texts:
            dispatcher.utter_message(
                text=texts[0], clinic={"kind": "staff", "name": staff_name(tracker)}
            )
        return []
