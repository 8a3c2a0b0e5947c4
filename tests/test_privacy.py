"""Questions about the patient's own details or this chat are recognised; other questions are not."""

from __future__ import annotations

import pytest
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.privacy_classifier import PrivacyQuestionClassifier
from bot.privacy import PRIVACY_INTENT, asks_about_personal_data, asks_about_privacy

ABOUT_THEIR_DETAILS = [
    "why do you need my details?", "what will you do with my number", "who will see my phone number",
    "is my data safe", "do you sell my data?", "will my info be shared with anyone?",
    "what do you use my email for?", "is this pdpa compliant", "what happens to my personal data?",
]
OTHER = [
    "who will see me? what's the doctor's name?", "is it safe to do squats?", "my name is Sarah Lim",
    "why does my knee hurt", "can i give my husband's number instead?", "what's your phone number",
]


@pytest.mark.parametrize("text", ABOUT_THEIR_DETAILS)
def test_a_question_about_the_patients_details_is_recognised(text: str) -> None:
    assert asks_about_personal_data(text)


@pytest.mark.parametrize("text", OTHER)
def test_other_questions_and_answers_are_not(text: str) -> None:
    assert not asks_about_personal_data(text)


# At any turn (not only at a form prompt): the question about the chat itself too, and both
# halves in one clause, so a medical question that follows an introduction keeps its topic.
PRIVACY_AT_ANY_TURN = [
    *ABOUT_THEIR_DETAILS, "is this chat private?", "Is this conversation confidential",
    "who can read my messages", "do you record this conversation?", "are my messages stored",
    "can anyone else see this chat", "is what i type here saved?", "please delete my data",
    "who has access to my medical information?", "Is my information kept confidential?",
    "who reads these messages", "do you keep my information?",
]
NOT_PRIVACY = [
    *OTHER, "my name is Sarah, is it safe to run with knee pain?", "hi my name is Tan. why does my back hurt",
    "can i chat with the doctor", "i'd like to chat to a person", "is an MRI safe", "is this treatment safe",
    "my back hurts when i sit, is it safe to keep working", "how do i save my knee from surgery",
    "what's my booking number", "can you send the details to my email", "can you keep my appointment",
]


@pytest.mark.parametrize("text", PRIVACY_AT_ANY_TURN)
def test_a_question_about_their_data_or_this_chat_is_recognised_at_any_turn(text: str) -> None:
    assert asks_about_privacy(text)


@pytest.mark.parametrize("text", NOT_PRIVACY)
def test_a_medical_or_other_question_is_not_read_as_privacy(text: str) -> None:
    assert not asks_about_privacy(text)


def test_the_component_overrules_the_models_topic_for_a_privacy_question_only() -> None:
    def read_as(text: str, intent: str) -> Message:
        message = Message(data={"text": text})
        message.set("intent", {"name": intent, "confidence": 0.96})
        message.set("intent_ranking", [{"name": intent, "confidence": 0.96}])
        PrivacyQuestionClassifier().process([message])
        return message

    assert read_as("is my data safe", "ask_side_effects").get("intent") == {"name": PRIVACY_INTENT, "confidence": 1.0}
    assert read_as("is prp safe", "ask_prp").get("intent")["name"] == "ask_prp"
    assert read_as("/ask_fees", "ask_fees").get("intent")["name"] == "ask_fees"
    emergency = read_as("can't feel my legs, is this chat private", "report_red_flag")
    assert emergency.get("intent")["name"] == "report_red_flag"
