"""A message that is nothing but a knee or back complaint is `describe_symptoms`.

A longer question that contains one keeps what the model read (it is not a bare complaint).
"""

from __future__ import annotations

import pytest
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.complaint_classifier import COMPLAINT_INTENT, ComplaintClassifier, is_bare_complaint

BARE = [
    "my knee hurts", "My knee really hurts!", "knee pain", "Back pain.", "i have knee pain",
    "i've got lower back pain", "pain in my knee", "my knees ache", "my back is killing me",
    "backache", "my left knee is sore", "i'm having back pain again", "suffering from chronic back pain",
    "my back's been playing up", "knee pain lah", "my lower back hurts so much",
]
NOT_BARE = [
    "knee", "my knee", "lower back", "both",  # answers to "which area?"
    "what causes knee pain", "are squats a no-go if my knees hurt", "my knee hurts when i climb stairs",
    "knee pain after running", "my knee hurts and i have a fever", "back pain and numb groin",
    "is it time to see a doctor if my knee has hurt for 2 weeks", "knee replacement",
    "the back of my knee hurts", "my back is fine", "/describe_symptoms",
]


@pytest.mark.parametrize("text", BARE)
def test_a_bare_complaint_is_recognised(text: str) -> None:
    assert is_bare_complaint(text)


@pytest.mark.parametrize("text", NOT_BARE)
def test_an_answer_or_a_question_that_contains_a_complaint_is_not(text: str) -> None:
    assert not is_bare_complaint(text)


def read_as(text: str, intent: str, confidence: float) -> Message:
    message = Message(data={"text": text})
    message.set("intent", {"name": intent, "confidence": confidence})
    message.set("intent_ranking", [{"name": intent, "confidence": confidence}])
    ComplaintClassifier().process([message])
    return message


def test_the_component_overrules_the_models_topic_for_a_bare_complaint_only() -> None:
    bare = read_as("my knee hurts", "ask_injury", 0.54)
    assert bare.get("intent") == {"name": COMPLAINT_INTENT, "confidence": 1.0}
    assert [r["name"] for r in bare.get("intent_ranking")] == [COMPLAINT_INTENT, "ask_injury"]
    question = read_as("my knee hurts when i climb stairs", "describe_symptoms", 0.9)
    assert question.get("intent") == {"name": "describe_symptoms", "confidence": 0.9}
    other = read_as("what causes knee pain", "ask_causes", 0.97)
    assert other.get("intent")["name"] == "ask_causes"
