"""A message that is nothing but a request for advice is `ask_capabilities`.

After a complaint that gets the treatment options for the body part (data/rules/faq.yml),
anywhere else what the assistant can help with. A request that names a topic keeps what the
model read.
"""

from __future__ import annotations

import pytest
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.advice_classifier import ADVICE_INTENT, AdviceRequestClassifier, is_advice_request

BARE = [
    "what should i do", "What should I do about it?", "so what do i do now", "any advice?",
    "Any tips please", "do you have any advice for me", "can you give me some advice", "i need advice",
    "how can i fix it", "how do i ease the pain at home", "how can i make it better",
    "is there anything i can do at home", "anything i can do about it?", "Is there something I can try myself",
    "what can i do to make it better", "what can be done about it", "what do you recommend",
    "what would you suggest i do", "what are my options", "ok what now",
    "what can i do for the pain in the meantime", "hmm what should i do then",
    "\u2018What should I do?\u2019", "What do you suggest I do\u2026",
]
NAMES_A_TOPIC = [
    "how do i treat it", "what can i take for it", "should i rest or keep moving",
    "what should i do about my knee", "what should i do if my leg goes numb", "any advice on exercises",
    "what can i do to prevent it", "what do you recommend for sciatica", "how can i fix my posture",
    "i can't do anything", "advice on surgery", "tips for losing weight",
    "is there anything i can do to avoid surgery", "/ask_capabilities",
]


@pytest.mark.parametrize("text", BARE)
def test_a_bare_request_for_advice_is_recognised(text: str) -> None:
    assert is_advice_request(text)


@pytest.mark.parametrize("text", NAMES_A_TOPIC)
def test_a_request_that_names_a_topic_is_not(text: str) -> None:
    assert not is_advice_request(text)


def read_as(text: str, intent: str, confidence: float) -> Message:
    message = Message(data={"text": text})
    message.set("intent", {"name": intent, "confidence": confidence})
    message.set("intent_ranking", [{"name": intent, "confidence": confidence}])
    AdviceRequestClassifier().process([message])
    return message


def test_the_component_overrules_the_models_reading_of_a_bare_request_only() -> None:
    bare = read_as("any advice?", "nlu_fallback", 0.45)
    assert bare.get("intent") == {"name": ADVICE_INTENT, "confidence": 1.0}
    assert [r["name"] for r in bare.get("intent_ranking")] == [ADVICE_INTENT, "nlu_fallback"]
    topic = read_as("how do i treat it", "ask_treatment_options", 0.98)
    assert topic.get("intent") == {"name": "ask_treatment_options", "confidence": 0.98}
