"""A patient describing their own symptoms: acknowledge, point to reading, never diagnose."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import BOOK_BUTTON, URGENT_BUTTON
from bot.knowledge_base import get_knowledge_base

DEFAULT_TOPICS = ["causes", "treatment_options"]


class ActionDescribeSymptoms(Action):
    """Relate a description to article topics and offer a consultation."""

    def name(self) -> str:
        """Action name used in rules."""
        return "action_describe_symptoms"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[EventType]:
        """Acknowledge, suggest related topics, say only a clinician can diagnose."""
        kb = get_knowledge_base()
        text = tracker.latest_message.get("text") or ""
        topics = kb.topics_for_symptoms(text) or DEFAULT_TOPICS
        titles = kb.titles(topics)
        doctor = tracker.get_slot("doctor") or kb.profile.doctor
        dispatcher.utter_message(
            text="I'm sorry you're dealing with this. I can't tell what is causing your "
            f"pain: only a clinician who examines you can diagnose it, and {doctor} can do that."
        )
        dispatcher.utter_message(
            text="In the meantime, our article has general information that may relate to "
            f"what you describe: {', '.join(titles)}. Would you like to book a consultation?",
            buttons=[
                *({"title": kb.topics[t].title, "payload": f"/ask_{t}"} for t in topics),
                BOOK_BUTTON,
                URGENT_BUTTON,
            ],
        )
        return [SlotSet("offer", "booking"), SlotSet("last_topic", topics[0])]
