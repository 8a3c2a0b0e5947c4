"""A patient describing their own symptoms: acknowledge, point to reading, never diagnose.

"What can I do about it?" right after the complaint reads as a question about what the
assistant can do; it gets the treatment options for the area named instead of the menu.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.answers import named_body_part, send_answer
from actions.common import BOOK_BUTTON, URGENT_BUTTON
from bot.knowledge_base import get_knowledge_base

DEFAULT_TOPICS = ["causes", "treatment_options"]
SURE = 0.8
"""Below this, `ask_capabilities` after a complaint is a guess, not "what can I do about it?"."""


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


class ActionSuggestTreatments(Action):
    """The article's treatment options, for "what can I do about it?" after a complaint."""

    def name(self) -> str:
        """Action name used in data/rules/faq.yml."""
        return "action_suggest_treatments"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[EventType]:
        """Say where the options come from, then the options for the area named (or both).

        A message the model only guessed was "what can you do?" ("how do I get to you", 0.53)
        is not a request for advice: it gets the menu, as it would anywhere else.
        """
        if float((tracker.latest_message.get("intent") or {}).get("confidence") or 0.0) < SURE:
            dispatcher.utter_message(response="utter_capabilities")
            return []
        dispatcher.utter_message(text="Here is what our clinic's article says about treating it.")
        return send_answer(dispatcher, "treatment_options", named_body_part(tracker))
