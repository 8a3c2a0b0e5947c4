"""The red-flag detector: every red flag in several phrasings, and negations that must not fire."""

from __future__ import annotations

import pytest

from bot.safety import get_detector

RED_FLAGS = {
    "bladder_bowel": [
        "I can't control my bladder since yesterday",
        "i cant pee and my back is killing me",
        "I've lost control of my bowels",
        "wet myself this morning and my back hurts",
        "trouble passing urine since the back pain started",
        "strain to pee and nothing comes out",
        "cannot hold my urine anymore",
    ],
    "saddle_numbness": [
        "my groin feels numb",
        "numbness between my legs",
        "I couldn't feel my privates when I wiped",
        "numb bum and can't feel the toilet paper",
        "saddle numbness with back pain",
    ],
    "leg_weakness": [
        "my legs are getting weaker every day",
        "suddenly my left leg is weak",
        "I have foot drop",
        "I'm dragging my foot when I walk",
        "foot keeps slapping the floor",
        "leg giving way and getting worse",
    ],
    "fever_with_back_pain": [
        "I have a fever and back pain",
        "chills and my lower back aches",
        "running a high temperature and my spine hurts",
    ],
    "cannot_bear_weight": [
        "I fell and can't put weight on my leg",
        "fell down the stairs and now I can't stand",
        "can't bear weight on my knee after the accident",
    ],
    "hot_swollen_joint": [
        "my knee is hot red and swollen",
        "knee swollen and warm and I have chills",
        "red swollen knee with a fever",
    ],
    "cancer_or_weight_loss": [
        "I had breast cancer and now my back hurts",
        "I've lost weight without trying",
        "lost 8kg without trying and my back aches",
        "losing weight for no reason and back ache",
    ],
    "severe_night_pain": [
        "severe pain every night that wakes me up",
        "the pain is constant and unbearable at night",
        "back pain keeps me awake all night, it never stops",
    ],
}

NOT_RED_FLAGS = [
    "no numbness in my groin",
    "I don't have a fever",
    "I have no trouble passing urine",
    "no bladder or bowel problems",
    "I can control my bladder fine",
    "my back hurts when I sit",
    "I want to lose weight to help my knees",
    "what is sciatica",
    "my knee is swollen after running",
    "my legs feel a bit weak",
    "pain at night sometimes",
    "I don't have any weakness in my legs",
    "no fever, no chills",
    "I have numbness down my leg",
    "I fell last week but I can walk fine",
    "I lost 5 kg on a diet and my knees feel better",
    "pain at the bottom of my back",
    "hyaluronic acid injections for the knee",
    "never had cancer, just a sore back",
    "",
]


@pytest.mark.parametrize(
    ("flag", "text"), [(flag, text) for flag, texts in RED_FLAGS.items() for text in texts]
)
def test_each_red_flag_is_detected(flag: str, text: str) -> None:
    result = get_detector().detect(text)
    assert flag in result.flags, f"{text!r} -> {result.flags}"


@pytest.mark.parametrize("text", NOT_RED_FLAGS)
def test_negations_and_ordinary_messages_do_not_fire(text: str) -> None:
    assert not get_detector().detect(text), text


def test_span_points_at_the_symptom_words() -> None:
    text = "hello doctor, since Monday I can't pee properly"
    result = get_detector().detect(text)
    assert "pee" in text[result.start:result.end]


def test_very_long_or_odd_input_is_handled() -> None:
    assert not get_detector().detect("🙂" * 5000)
    assert get_detector().detect("my back story. " * 400 + "I can't control my bladder")
