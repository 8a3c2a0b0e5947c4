"""Form input checks: good input cleaned, bad and hostile input re-asked with a reason."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.validation import (
    Invalid,
    clean_description,
    clean_email,
    clean_name,
    clean_pain_area,
    clean_phone,
    parse_preferred_times,
)

HOSTILE = [
    "x" * 10_000,
    "Robert'); DROP TABLE booking_requests;--",
    "<script>alert(1)</script>",
    "<b>bold</b>",
    "abc\x00def",
    "line\x1b[31mred",
    "😀😀😀",
    "http://evil.example/phish",
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tan Wei Ming", "Tan Wei Ming"),
        ("my name is Sarah O'Neil", "Sarah O'Neil"),
        ("陈伟明", "陈伟明"),
        ("Nur Aisyah binte Ahmad", "Nur Aisyah binte Ahmad"),
        ("  José   Álvarez-Ruiz ", "José Álvarez-Ruiz"),
    ],
)
def test_names(text: str, expected: str) -> None:
    assert clean_name(text) == expected


@pytest.mark.parametrize(
    "text",
    ["May Tan", "Will Ong", "How Wei Ling", "Do Van Minh", "Can Yilmaz", "No Ji-hoon", "Muhammad bin Abdullah",
     "Siti binti Ahmad", "Mary-Ann O'Neil", "Anna de la Cruz", "I'm Lee Ah Kow", "Who Kah Hoe", "U Aung Kyaw"],
)
def test_names_that_share_a_word_with_english_are_still_names(text: str) -> None:
    assert clean_name(text)


@pytest.mark.parametrize(
    "text",
    ["what should i do", "why do you need my name", "my knee hurts", "hello", "i don't know",
     "not telling you", "thanks", "Is that OK", "can you call me instead", "I want to book", "no", "Nah"],
)
def test_a_sentence_typed_at_the_name_prompt_is_not_taken_as_a_name(text: str) -> None:
    with pytest.raises(Invalid) as exc:
        clean_name(text)
    assert "I need your full name here" in str(exc.value)


@pytest.mark.parametrize("text", [*HOSTILE, "x", "91234567", ""])
def test_hostile_or_wrong_names_are_re_asked(text: str) -> None:
    with pytest.raises(Invalid) as exc:
        clean_name(text)
    assert str(exc.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9123 4567", "+6591234567"),
        ("81234567", "+6581234567"),
        ("+65 9123 4567", "+6591234567"),
        ("my number is +1 415 555 0123", "+14155550123"),
        ("+61 412 345 678", "+61412345678"),
    ],
)
def test_phones_become_e164(text: str, expected: str) -> None:
    assert clean_phone(text, "SG") == expected


@pytest.mark.parametrize("text", [*HOSTILE, "1234", "12345678901234567890", "call me maybe"])
def test_bad_phones_are_re_asked_with_an_example(text: str) -> None:
    with pytest.raises(Invalid, match="9123 4567|characters|long"):
        clean_phone(text, "SG")


def test_email_optional_and_validated() -> None:
    assert clean_email("skip") is None
    assert clean_email("my email is tan@example.com") == "tan@example.com"
    for bad in ["tan@", "not an email", "<script>@x.com", "a" * 300]:
        with pytest.raises(Invalid):
            clean_email(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("lower back", "lower back"), ("Knee", "knee"), ("both", "both"), ("my back and my knees", "both"),
     ("left knee", "knee"), ("back pain", "lower back")],
)
def test_pain_area(text: str, expected: str) -> None:
    assert clean_pain_area(text) == expected


def test_pain_area_outside_the_clinic_scope_is_re_asked() -> None:
    with pytest.raises(Invalid, match="lower back pain, knee pain or both"):
        clean_pain_area("my elbow")


def test_preferred_times_free_text_is_understood_and_kept() -> None:
    now = datetime(2026, 11, 25, 22, 0, tzinfo=timezone.utc)  # Thursday 06:00 in Singapore
    times = parse_preferred_times("next tuesday after 5pm", now, "Asia/Singapore")
    assert times.text == "next tuesday after 5pm"
    assert times.understood == "Tuesday 1 December, after 17:00"
    assert parse_preferred_times("Weekday mornings", now, "Asia/Singapore").understood is None
    third = parse_preferred_times("3 December at 10am", now, "Asia/Singapore")
    assert third.understood == "Thursday 3 December, at 10:00"


@pytest.mark.parametrize("text", ["x" * 300, "a\x00b", "<script>alert(1)</script>", "."])
def test_bad_preferred_times_are_re_asked(text: str) -> None:
    with pytest.raises(Invalid):
        parse_preferred_times(text, datetime.now(timezone.utc), "Asia/Singapore")


def test_description_keeps_the_patients_words_but_not_control_characters() -> None:
    assert clean_description("knee hurts on stairs 😣 since March") == "knee hurts on stairs 😣 since March"
    assert clean_description("<b>it hurts</b>") == "<b>it hurts</b>"  # stored as text, escaped when shown
    for bad in ["a\x00b", "x" * 1001, "ok"]:
        with pytest.raises(Invalid):
            clean_description(bad)
