"""Low-confidence input: ask "Did you mean...?" once, then offer a person instead of looping."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.answers import send_recovery
from actions.handoff import hand_over
from bot.knowledge_base import get_knowledge_base, topic_for_intent

# Labels for the non-topic intents a clarification may suggest.
INTENT_LABELS = {
    "book_appointment": "Book a consultation",
    "request_human": "Talk to a person",
    "ask_warning_signs": "When to get urgent help",
    "describe_symptoms": "I'm describing my symptoms",
    "ask_capabilities": "What can you help with?",
    "ask_opening_hours": "Opening hours",
    "ask_fees": "Fees",
    "ask_insurance": "Insurance and Medisave",
    "ask_referral": "Do I need a referral?",
    "ask_waiting_time": "Waiting time",
    "ask_location": "Where the clinic is",
    "ask_parking": "Parking",
    "ask_doctor": "About the doctor",
}
NEVER_SUGGEST = {"nlu_fallback", "out_of_scope", "nonsense", "greet", "goodbye", "thank", "affirm",
                 "deny", "inform", "cancel", "bot_challenge"}
SOMETHING_ELSE = {"title": "Something else", "payload": "/ask_capabilities"}


def label(intent: str) -> str | None:
    """A button title for an intent, or None if it should not be suggested."""
    topic = topic_for_intent(intent)
    kb = get_knowledge_base()
    if topic in kb.topics:
        return kb.topics[topic].title
    return INTENT_LABELS.get(intent)


class ActionClarify(Action):
    """First failure: the two likeliest topics as buttons; second: hand over."""

    def name(self) -> str:
        """Action name used by the nlu_fallback rule."""
        return "action_clarify"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[EventType]:
        """Suggest, or after a second miss hand over to staff.

        A question about recovering from the treatment named, or the one just answered ("how
        long is recovery?"), is not a miss: the article has nothing on it, and the patient is
        told so (`send_recovery`).
        """
        text = tracker.latest_message.get("text") or ""
        topic = get_knowledge_base().topic_named_in(text) or tracker.get_slot("last_topic")
        if get_knowledge_base().asks_about_recovery_from(topic, text):
            return send_recovery(dispatcher, str(topic))
        attempts = float(tracker.get_slot("clarify_attempts") or 0)
        if attempts >= 1:
            dispatcher.utter_message(
                text="Sorry, I'm still not sure what you mean. Let me get you to someone who can help."
            )
            reason = "the assistant did not understand twice"
            return [SlotSet("clarify_attempts", 0.0), *await hand_over(dispatcher, tracker, reason=reason)]
        buttons = []
        for item in tracker.latest_message.get("intent_ranking") or []:
            title = None if item.get("name") in NEVER_SUGGEST else label(item.get("name", ""))
            if title:
                buttons.append({"title": title, "payload": f"/{item['name']}"})
            if len(buttons) == 2:
                break
        if buttons:
            text = "Sorry, I'm not sure I understood. Did you mean one of these?"
        else:
            text = "Sorry, I'm not sure I understood. Could you say it another way?"
        dispatcher.utter_message(text=text, buttons=[*buttons, SOMETHING_ELSE])
        return [SlotSet("clarify_attempts", attempts + 1)]
