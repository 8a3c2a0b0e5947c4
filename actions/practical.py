"""Practical questions (hours, fees, insurance, referral, waiting time, location, parking, the doctor, privacy).

The wording and the "can't answer that" fallback live in `bot.practical`; this action sends
the answer for the intent, and remembers nothing (a practical question is not an article
topic, so it gets no "Was this helpful?" and does not change `last_topic`). A question that
names a treatment ("PRP is expensive, does it even work?") gets a button for that treatment
too, so what the article says about it is one tap away.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import latest_intent
from bot.clock import now
from bot.knowledge_base import get_knowledge_base, in_sentence
from bot.practical import practical_answer
from bot.privacy import PRIVACY_INTENT
from bot.profile import get_profile


class ActionAnswerPractical(Action):
    """Answer a practical question from the practice profile."""

    def name(self) -> str:
        """Action name used by the rules in data/rules/practical.yml."""
        return "action_answer_practical"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        """Send the profile's answer (or say plainly that it isn't known)."""
        intent = latest_intent(tracker)
        answer = practical_answer(intent, get_profile(), now())
        if answer is None:
            dispatcher.utter_message(response="utter_default")
            return []
        buttons = answer.buttons
        kb = get_knowledge_base()
        topic = kb.topic_named_in(tracker.latest_message.get("text") or "")
        if topic and intent != PRIVACY_INTENT:
            title = in_sentence(kb.topics[topic].title)
            buttons = [{"title": f"About {title}", "payload": f"/ask_{topic}"}, *buttons]
        dispatcher.utter_message(text=answer.text, buttons=buttons)
        return [SlotSet("offer", None), SlotSet("clarify_attempts", 0.0)]
