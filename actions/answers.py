"""Answers from the knowledge base: NLU picks the topic, these actions look it up.

`action_answer_topic` answers an article topic in the variant for the body part the
patient named; `action_answer_follow_up` handles "what about my back?", "tell me more"
and "any side effects?" using the topic kept in the `last_topic` slot, or the treatment
the question names ("what are the risks of a knee replacement?", even as a first message,
and whichever of the two intents the NLU read it as). A patient who says a treatment has
not helped ("the physio isn't helping, what else can I do?") gets the other options.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import BOOK_BUTTON, entity_values, latest_intent, send_bubbles
from bot.clock import now
from bot.knowledge_base import get_knowledge_base, in_sentence, topic_for_intent
from bot.practical import practical_answer
from bot.privacy import asks_about_personal_data, privacy_answer
from bot.profile import get_profile

FEEDBACK_BUTTONS = [
    {"title": "👍 Yes", "payload": "/affirm"},
    {"title": "👎 No", "payload": "/deny"},
]


def named_body_part(tracker: Tracker) -> Optional[str]:
    """The body part named in this message, else the one named earlier."""
    values = entity_values(tracker, "body_part")
    return values[0] if values else tracker.get_slot("body_part")


def answer_events(topic: str) -> List[EventType]:
    """Remember the topic for follow-ups and ask for feedback on it."""
    return [
        SlotSet("last_topic", topic),
        SlotSet("offer", "feedback"),
        SlotSet("clarify_attempts", 0.0),
    ]


def send_answer(
    dispatcher: CollectingDispatcher, topic: str, body_part: Optional[str]
) -> List[EventType]:
    """Send the topic's answer, then the feedback question.

    The question is marked `clinic={"kind": "feedback"}`: the widget shows it as small
    thumbs-up/down buttons on the answer; messaging channels show the buttons as they are.
    """
    answer = get_knowledge_base().answer(topic, body_part)
    send_bubbles(dispatcher, answer.bubbles, answer.buttons)
    dispatcher.utter_message(
        text="Was this helpful?", buttons=FEEDBACK_BUTTONS, clinic={"kind": "feedback"}
    )
    return answer_events(topic)


def send_recovery(dispatcher: CollectingDispatcher, topic: str) -> List[EventType]:
    """Say the article doesn't cover recovery from this treatment; who can (a consultation)."""
    kb = get_knowledge_base()
    about = {"title": f"About {in_sentence(kb.topics[topic].title)}", "payload": f"/ask_{topic}"}
    dispatcher.utter_message(text=kb.recovery(topic), buttons=[about, BOOK_BUTTON])
    return [SlotSet("offer", None), SlotSet("last_topic", topic), SlotSet("clarify_attempts", 0.0)]


def send_side_effects(dispatcher: CollectingDispatcher, topic: str) -> List[EventType]:
    """Send what the article says about a treatment's risks (or that it says nothing).

    Buttons: the treatment itself (for what it is) and the booking handoff, since only a
    clinician can speak to the risks for this patient. The treatment is kept for follow-ups.
    """
    kb = get_knowledge_base()
    about = {"title": f"About {in_sentence(kb.topics[topic].title)}", "payload": f"/ask_{topic}"}
    send_bubbles(dispatcher, kb.side_effects(topic), [about, BOOK_BUTTON])
    return [SlotSet("offer", None), SlotSet("last_topic", topic), SlotSet("clarify_attempts", 0.0)]


def other_options_lead(tried: str) -> str:
    """What introduces the treatment options to a patient for whom `tried` has not helped."""
    title = in_sentence(get_knowledge_base().topics[tried].title)
    return (f"Since you've tried {title}, these are the other options the clinic's article "
            "describes. A doctor can advise which would suit you.")


def send_other_options(dispatcher: CollectingDispatcher, tried: str, body_part: Optional[str]) -> List[EventType]:
    """The treatment options, for a patient who says treatment `tried` has not helped."""
    dispatcher.utter_message(text=other_options_lead(tried))
    return send_answer(dispatcher, "treatment_options", body_part)


QUESTION_CONFIDENCE = 0.6
QUESTION_START = re.compile(
    r"^\W*(?:what|whats|how|why|when|where|which|who|can|could|is|are|do|does|did|should|"
    r"will|would|any|tell|explain|may)\b",
    re.I,
)
VALUE_LIKE = re.compile(r"\d[\d\s()+-]{6,}\d|\S+@\S+\.\w")  # a phone number, an email


def looks_like_question(text: str) -> bool:
    """A question rather than an answer to the form ("what is PRP?", not "9123 4567")."""
    if VALUE_LIKE.search(text):
        return False
    return "?" in text or bool(QUESTION_START.search(text))


def answer_question_in_form(dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
    """Answer a question asked at a form prompt; True if one was answered.

    A patient asked for their phone number may ask "what is PRP?" or "how much is it?"
    instead: they get the answer (article or practice profile), then the form asks its
    question again (it is not read as a bad phone number). Only a message that reads as
    a question is answered, so an answer meant for the form never gets an unrelated topic.
    """
    intent = tracker.latest_message.get("intent") or {}
    text = tracker.latest_message.get("text") or ""
    if looks_like_question(text) and asks_about_personal_data(text):
        dispatcher.utter_message(text=privacy_answer(get_profile()))
        dispatcher.utter_message(text="Now, back to your request:")
        return True
    if float(intent.get("confidence") or 0.0) < QUESTION_CONFIDENCE or not looks_like_question(text):
        return False
    practical = practical_answer(intent.get("name"), get_profile(), now())
    topic = topic_for_intent(intent.get("name"))
    kb = get_knowledge_base()
    if practical is not None:
        dispatcher.utter_message(text=practical.text)
    elif topic in kb.topics and kb.asks_about_risks_of(topic, text):
        send_bubbles(dispatcher, kb.side_effects(topic))
    elif topic in kb.topics and kb.asks_about_recovery_from(topic, text):
        dispatcher.utter_message(text=kb.recovery(topic))
    elif topic in kb.topics and kb.says_did_not_help(topic, text):
        dispatcher.utter_message(text=other_options_lead(topic))
        send_bubbles(dispatcher, kb.answer("treatment_options", named_body_part(tracker)).bubbles)
    elif topic in kb.topics:
        send_bubbles(dispatcher, kb.answer(topic, named_body_part(tracker)).bubbles)
    else:
        return False
    dispatcher.utter_message(text="Now, back to your request:")
    return True


class ActionAnswerTopic(Action):
    """Answer the article topic named by the intent (`ask_<topic>`).

    A question about a treatment's risks ("what are the risks of knee replacement
    surgery?") is often read as the treatment's own intent; it gets the treatment's side
    effects, as `ask_side_effects` would, not a description of the treatment. One saying the
    treatment has not helped ("the physio isn't helping, what else?") gets the other options.
    """

    def name(self) -> str:
        """Action name used in rules."""
        return "action_answer_topic"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[EventType]:
        """Look the topic up and send it."""
        kb = get_knowledge_base()
        topic = topic_for_intent(latest_intent(tracker))
        if topic not in kb.topics:
            dispatcher.utter_message(response="utter_default")
            return []
        text = tracker.latest_message.get("text") or ""
        if kb.asks_about_risks_of(topic, text):
            return send_side_effects(dispatcher, topic)
        if kb.asks_about_recovery_from(topic, text):
            return send_recovery(dispatcher, topic)
        if kb.says_did_not_help(topic, text):
            return send_other_options(dispatcher, topic, named_body_part(tracker))
        return send_answer(dispatcher, topic, named_body_part(tracker))


class ActionAnswerFollowUp(Action):
    """Answer a follow-up about the previous topic."""

    def name(self) -> str:
        """Action name used in rules."""
        return "action_answer_follow_up"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[EventType]:
        """Dispatch on the follow-up intent."""
        kb = get_knowledge_base()
        intent = latest_intent(tracker)
        topic = tracker.get_slot("last_topic")
        if intent == "ask_side_effects":
            topic = kb.topic_named_in(tracker.latest_message.get("text") or "") or topic
        if topic not in kb.topics:
            return self._no_topic(dispatcher, tracker, intent)
        title = kb.topics[topic].title
        if intent == "inform_body_part":
            return send_answer(dispatcher, topic, named_body_part(tracker))
        text = tracker.latest_message.get("text") or ""
        if kb.asks_about_recovery_from(topic, text) and not kb.asks_about_risks_of(topic, text):
            return send_recovery(dispatcher, topic)  # "any downtime?" reads as side effects
        if intent == "ask_side_effects":
            return send_side_effects(dispatcher, topic)
        more = kb.more(topic)
        if more:
            send_bubbles(dispatcher, more, kb.buttons_for(kb.topics[topic]))
        else:
            dispatcher.utter_message(
                text=f"That's everything our article says about {title.lower()}. "
                "Related topics, or a consultation for advice about you:",
                buttons=kb.buttons_for(kb.topics[topic]),
            )
        return [SlotSet("offer", None)]

    @staticmethod
    def _no_topic(
        dispatcher: CollectingDispatcher, tracker: Tracker, intent: Optional[str]
    ) -> List[EventType]:
        if intent == "inform_body_part" and named_body_part(tracker):
            return send_answer(dispatcher, "treatment_options", named_body_part(tracker))
        kb = get_knowledge_base()
        keys = ["treatment_options", "medication", "injections", "surgery"]
        dispatcher.utter_message(
            text="Which topic do you mean? Pick one, or ask your question in your own words.",
            buttons=[{"title": kb.topics[k].title, "payload": f"/ask_{k}"} for k in keys],
        )
        return []
