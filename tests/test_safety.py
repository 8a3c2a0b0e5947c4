"""The safety rules and their data file: every flag caught as patients write it, and no false alarm.

Phrasings come from three places: the data file's own examples (what a clinician reviews),
the project's safety set `tests/safety/holdout.yml` (written from the flag categories by
someone who never saw the rules), and the cases below, one per behaviour the rules promise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import yaml

from bot.safety import get_detector
from bot.safety.data import SafetyDataError, get_safety_data, load_safety_data, parse_safety_data

ROOT = Path(__file__).resolve().parent.parent
SAFETY_SET: Dict[str, Any] = yaml.safe_load((ROOT / "tests" / "safety" / "holdout.yml").read_text("utf-8"))
MAX_FALSE_ALARMS = 0.02


def _flag_examples() -> List[Tuple[str, str]]:
    return [(f.id, text) for f in get_safety_data().flags.values() for text in f.examples]


@pytest.mark.parametrize(("flag", "text"), _flag_examples())
def test_every_example_in_the_data_file_raises_its_flag(flag: str, text: str) -> None:
    assert flag in get_detector().detect(text).flags, text


@pytest.mark.parametrize("text", get_safety_data().negatives)
def test_no_negative_in_the_data_file_raises_an_alert(text: str) -> None:
    assert not get_detector().detect(text), text


def test_every_safety_set_message_is_alerted_with_its_own_flag() -> None:
    missed = [
        (flag, text)
        for flag, texts in SAFETY_SET["positives"].items()
        for text in texts
        if flag not in get_detector().detect(text).flags
    ]
    assert missed == []


def test_safety_set_covers_every_flag_with_at_least_15_phrasings_and_150_negatives() -> None:
    with_rules = {f.id for f in get_safety_data().flags.values() if f.when}
    assert set(SAFETY_SET["positives"]) == with_rules
    assert min(len(v) for v in SAFETY_SET["positives"].values()) >= 15
    assert len(SAFETY_SET["negatives"]) >= 150


def test_false_alarms_on_the_safety_set_stay_under_two_percent() -> None:
    alarms = [t for t in SAFETY_SET["negatives"] if get_detector().detect(t)]
    assert len(alarms) / len(SAFETY_SET["negatives"]) <= MAX_FALSE_ALARMS, alarms


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("38.9 temp and my back is killing me", "fever_with_back_pain"),
        ("temperature 39.2°C and lower back pain", "fever_with_back_pain"),
        ("my back aches and the thermometer says 101F", "fever_with_back_pain"),
        ("back pain, temp of 100.6 fahrenheit", "fever_with_back_pain"),
    ],
)
def test_temperatures_at_or_above_the_fever_threshold_count_as_fever(text: str, flag: str) -> None:
    assert flag in get_detector().detect(text).flags


@pytest.mark.parametrize(
    "text",
    ["temperature 37.2, back pain as usual", "I'm 38 years old with back pain", "lost 39 kg? no, my back hurts"],
)
def test_normal_temperatures_and_other_numbers_are_not_fever(text: str) -> None:
    assert "fever_with_back_pain" not in get_detector().detect(text).flags


@pytest.mark.parametrize(
    "text",
    [
        "I had a fever last month with my back pain but it's gone",
        "used to have numbness between my legs years ago",
        "had numbness in my groin before, now only a dull ache",
        "back in 2019 I couldn't control my bladder, all fine since the op",
    ],
)
def test_past_and_resolved_mentions_do_not_fire(text: str) -> None:
    assert not get_detector().detect(text), text


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("numb between my legs since yesterday", "saddle_numbness"),
        ("still can't control my bladder", "bladder_bowel"),
        ("had a fever last week and still have it, my back is agony", "fever_with_back_pain"),
    ],
)
def test_ongoing_mentions_fire(text: str, flag: str) -> None:
    assert flag in get_detector().detect(text).flags


def test_a_relative_with_the_patient_now_fires_but_family_history_does_not() -> None:
    assert "bladder_bowel" in get_detector().detect("my dad cannot pass urine since this morning").flags
    assert not get_detector().detect("my grandfather had bowel cancer and my back hurts")
    assert "cancer_history" in get_detector().detect("I had bowel cancer and my back hurts").flags


@pytest.mark.parametrize(
    "text",
    [
        "my job is a real pain in the neck",
        "the chest of drawers fell on my toe and it's bruised",
        "my boss is killing me with overtime",
        "that bill nearly gave me a heart attack",
        "we did suicide sprints at training and my knee aches",
    ],
)
def test_the_same_words_in_another_sense_do_not_fire(text: str) -> None:
    assert not get_detector().detect(text), text


def test_negated_symptoms_leave_the_question_alone() -> None:
    result = get_detector().detect("no numbness or fever, but my knee aches on stairs")
    assert not result
    assert {"numb", "fever"} <= result.dismissed


def test_several_flags_in_one_message_are_all_found() -> None:
    result = get_detector().detect("numbness between my legs and my legs are getting weaker every day")
    assert set(result.flags) == {"saddle_numbness", "leg_weakness"}


def test_what_is_said_back_is_what_the_patient_described_not_the_whole_flag() -> None:
    result = get_detector().detect("my knee is hot and swollen")
    assert [f.say for f in result.findings] == ["a hot, swollen joint"]
    assert "fever" not in result.findings[0].say


def test_a_symptom_in_the_middle_of_a_long_message_is_found() -> None:
    text = ("My back story. " * 300) + "Since this morning I can't control my bladder. " + ("More. " * 300)
    result = get_detector().detect(text)
    assert result.flags == ("bladder_bowel",)
    assert "bladder" in text[result.start:result.end]


def test_odd_input_is_handled() -> None:
    assert not get_detector().detect("🙂" * 5000)
    assert not get_detector().detect("\x00\x01 \u202e")
    assert not get_detector().detect("")


def test_every_flag_has_a_tier_advice_sources_and_a_screening_question() -> None:
    data = get_safety_data()
    assert len(data.flags) >= 20
    for flag in data.flags.values():
        assert flag.tier in ("emergency", "urgent")
        assert flag.advice and flag.screen_question and flag.sources
        assert all(source.url.startswith("https://") for source in flag.sources)
    assert data.flags["cancer_history"].tier == "urgent"
    assert data.flags["severe_night_pain"].tier == "urgent"
    assert data.flags["bladder_bowel"].tier == "emergency"
    assert data.flags["suicidal_thoughts"].is_crisis


def test_a_typo_in_the_data_file_fails_loudly() -> None:
    raw = yaml.safe_load((ROOT / "data" / "safety" / "flags.yml").read_text("utf-8"))
    raw["flags"]["bladder_bowel"]["when"][0]["all"] = ["incontinense"]
    with pytest.raises(SafetyDataError, match="incontinense"):
        parse_safety_data(raw)


def test_the_data_file_loads_as_shipped() -> None:
    assert load_safety_data().flags.keys() == get_safety_data().flags.keys()


def test_a_third_writers_development_set_stays_caught_and_quiet() -> None:
    dev: Dict[str, Any] = yaml.safe_load((ROOT / "tests" / "safety" / "dev.yml").read_text("utf-8"))
    positives = [(flag, text) for flag, texts in dev["positives"].items() for text in texts]
    caught = [text for _, text in positives if get_detector().detect(text)]
    alarms = [text for text in dev["negatives"] if get_detector().detect(text)]
    assert len(caught) / len(positives) >= 0.98
    assert len(alarms) / len(dev["negatives"]) <= MAX_FALSE_ALARMS, alarms
