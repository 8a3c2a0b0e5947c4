"""Questions about the patient's own details are recognised; other questions at a prompt are not."""

from __future__ import annotations

import pytest

from bot.privacy import asks_about_personal_data

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
