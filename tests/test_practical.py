"""Practical questions and opening hours: answered only from the profile, never guessed."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
import yaml

from actions.booking import ValidateBookingForm
from actions.handoff import ActionRequestHuman
from actions.practical import ActionAnswerPractical
from bot.practical import ANSWERS, outside_hours_warning, practical_answer
from bot.privacy import PRIVACY_INTENT
from bot.profile import PROFILE_PATH, PracticeProfile, get_profile, parse_profile
from bot.settings import get_settings
from bot.storage.migrate import upgrade
from tests.actions_helpers import DOMAIN, run, texts, tracker

MONDAY_10 = "2026-11-30T10:00:00+08:00"
SUNDAY_22 = "2026-11-29T22:00:00+08:00"
SATURDAY_08 = "2026-11-28T08:00:00+08:00"
PRICE = re.compile(r"(?:S?\$|SGD)\s*\d|\d+\s*(?:dollars|sgd)\b", re.I)


def shipped() -> Dict[str, Any]:
    return dict(yaml.safe_load(PROFILE_PATH.read_text(encoding="utf-8")))


def confirmed(**fields: Any) -> Dict[str, Any]:
    data = shipped()
    data["opening_hours"] = {**data["opening_hours"], "status": "confirmed"}
    data.update(fields)
    return data


@pytest.fixture()
def use_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Run the actions with another profile file and clock (PRACTICE_PROFILE, CLINIC_CLOCK)."""

    def apply(data: Dict[str, Any], clock: str) -> None:
        path = tmp_path / "profile.yml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        monkeypatch.setenv("PRACTICE_PROFILE", str(path))
        monkeypatch.setenv("CLINIC_CLOCK", clock)
        get_settings.cache_clear()
        get_profile.cache_clear()

    yield apply
    get_settings.cache_clear()
    get_profile.cache_clear()


def at(clock: str) -> datetime:
    return datetime.fromisoformat(clock)


def test_every_unfilled_practical_question_says_it_cannot_answer_and_offers_staff() -> None:
    profile = parse_profile(shipped())
    for intent in set(ANSWERS) - {PRIVACY_INTENT}:  # privacy: what the product does, not the profile
        answer = practical_answer(intent, profile, at(MONDAY_10))
        assert answer is not None and not answer.answered, intent
        assert "can't answer" in answer.text, intent
        assert not PRICE.search(answer.text), intent
        payloads = [b["payload"] for b in answer.buttons]
        assert payloads == ["/request_human", "/book_appointment"], intent


def test_a_privacy_question_is_answered_with_who_sees_the_conversation_and_how_to_delete_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETENTION_DAYS", "90")
    get_settings.cache_clear()
    profile = parse_profile(confirmed(phone="+65 6123 4567"))
    answer = practical_answer(PRIVACY_INTENT, profile, at(MONDAY_10))
    assert answer is not None and answer.answered
    assert "only clinic staff can see it" in answer.text
    assert "deleted 90 days after the last message" in answer.text  # what the retention service keeps
    assert "delete your conversation and details" in answer.text and "+65 6123 4567" in answer.text
    assert [b["payload"] for b in answer.buttons] == ["/request_human"]


def test_filled_in_answers_are_said_in_the_clinics_words() -> None:
    profile = parse_profile(confirmed(
        fees="The consultation fee is quoted when you book; PRP is priced after assessment.",
        insurance="We accept Medisave for eligible procedures and most Integrated Shield plans.",
        referral="No referral is needed to see Dr Yong Ren.",
        waiting_time="New patients are usually seen within a week.",
        parking="Parking is available in the building's basement car park.",
        address="1 Example Road, #05-01, Singapore 000001",
        directions="5 minutes' walk from Example MRT station (exit B).",
    ))
    now = at(MONDAY_10)
    assert practical_answer("ask_fees", profile, now).text.startswith("The consultation fee is quoted")  # type: ignore[union-attr]
    assert "Medisave" in practical_answer("ask_insurance", profile, now).text  # type: ignore[union-attr]
    assert practical_answer("ask_referral", profile, now).text == "No referral is needed to see Dr Yong Ren."  # type: ignore[union-attr]
    assert "basement" in practical_answer("ask_parking", profile, now).text  # type: ignore[union-attr]
    wait = practical_answer("ask_waiting_time", profile, now)
    assert wait is not None and wait.text == "New patients are usually seen within a week."
    location = practical_answer("ask_location", profile, now).text  # type: ignore[union-attr]
    assert "1 Example Road" in location and "Example MRT" in location


def test_the_doctor_question_never_claims_a_specialty_the_profile_does_not_hold() -> None:
    answer = practical_answer("ask_doctor", parse_profile(shipped()), at(MONDAY_10))
    assert answer is not None and "Dr Yong Ren" in answer.text
    assert "can't answer" in answer.text
    assert "surgeon" not in answer.text.lower()


def test_unconfirmed_hours_are_never_told_to_patients() -> None:
    answer = practical_answer("ask_opening_hours", parse_profile(shipped()), at(SUNDAY_22))
    assert answer is not None
    assert "haven't been confirmed" in answer.text
    assert "closed" not in answer.text.lower() and "09:00" not in answer.text


def test_confirmed_hours_say_today_and_when_the_clinic_opens_again() -> None:
    profile: PracticeProfile = parse_profile(confirmed())
    open_now = practical_answer("ask_opening_hours", profile, at(MONDAY_10)).text  # type: ignore[union-attr]
    assert open_now.startswith("We're open today until 17:00.")
    early = practical_answer("ask_opening_hours", profile, at(SATURDAY_08)).text  # type: ignore[union-attr]
    assert early.startswith("We open today at 09:00 (until 12:00).")
    sunday = practical_answer("ask_opening_hours", profile, at(SUNDAY_22)).text  # type: ignore[union-attr]
    assert sunday.startswith("We're closed today; we open again tomorrow at 09:00.")
    assert "Sat 09:00-12:00" in sunday


def test_a_booking_time_outside_confirmed_hours_gets_a_warning() -> None:
    profile = parse_profile(confirmed())
    sunday = outside_hours_warning(profile, datetime(2026, 12, 6, 10, 0), has_time=True)
    assert sunday == "Please note the clinic is closed on Sundays, so our staff will suggest another day."
    evening = outside_hours_warning(profile, datetime(2026, 12, 1, 19, 0), has_time=True)
    assert evening is not None and "Tuesdays the clinic is open 09:00-17:00" in evening
    assert outside_hours_warning(profile, datetime(2026, 12, 1, 10, 0), has_time=True) is None
    assert outside_hours_warning(parse_profile(shipped()), datetime(2026, 12, 6, 10, 0), True) is None


def test_the_booking_form_warns_when_the_patient_asks_for_a_closed_day(use_profile: Any) -> None:
    from rasa_sdk.executor import CollectingDispatcher

    use_profile(confirmed(), MONDAY_10)
    dispatcher = CollectingDispatcher()
    state = tracker("this sunday at 10am", "inform", slots={"requested_slot": "preferred_times"},
                    active_loop="booking_form")
    result = ValidateBookingForm().validate_preferred_times("this sunday at 10am", dispatcher, state, DOMAIN)
    assert result["preferred_times"] == "this sunday at 10am"
    assert "closed on Sundays" in texts(dispatcher.messages)


def test_practical_action_answers_from_the_profile_without_asking_for_feedback(use_profile: Any) -> None:
    use_profile(confirmed(parking="Basement car park, entrance on Example Road."), MONDAY_10)
    messages, events = run(ActionAnswerPractical(), tracker("where can i park", "ask_parking"))
    assert texts(messages) == "Basement car park, entrance on Example Road."
    assert "Was this helpful?" not in texts(messages)
    assert not any(e.get("name") == "last_topic" for e in events)


def test_a_cost_question_that_names_a_treatment_offers_that_treatment_too(use_profile: Any) -> None:
    use_profile(shipped(), MONDAY_10)
    messages, _ = run(ActionAnswerPractical(), tracker("PRP is so expensive, does it even work?", "ask_fees"))
    assert "can't answer questions about fees" in texts(messages)
    assert [b["payload"] for b in messages[-1]["buttons"]] == ["/ask_prp", "/request_human", "/book_appointment"]
    plain, _ = run(ActionAnswerPractical(), tracker("how much is a consultation", "ask_fees"))
    assert [b["payload"] for b in plain[-1]["buttons"]] == ["/request_human", "/book_appointment"]


def test_handoff_with_unconfirmed_hours_never_says_the_clinic_is_closed(use_profile: Any) -> None:
    upgrade()
    use_profile(shipped(), SUNDAY_22)
    messages, _ = run(ActionRequestHuman(), tracker("can i talk to a person", "request_human"))
    said = texts(messages)
    assert "closed" not in said.lower() and "open again" not in said
    assert "I can't tell whether our staff are available" in said
    assert [b["payload"] for b in messages[-1]["buttons"]] == ["/request_callback", "/deny"]


def test_handoff_with_confirmed_hours_says_when_the_clinic_opens(use_profile: Any) -> None:
    upgrade()
    use_profile(confirmed(), SUNDAY_22)
    messages, _ = run(ActionRequestHuman(), tracker("can i talk to a person", "request_human"))
    assert "Our clinic is closed right now. We open again tomorrow at 09:00." in texts(messages)


def test_unanswered_practical_fields_are_listed_but_allowed_in_production() -> None:
    data = confirmed(**{k: "+65 6000 0000" for k in ("phone", "whatsapp", "email", "address",
                                                       "emergency_number", "crisis_line")})
    data["booking_url"] = "https://example.org/book"
    profile = parse_profile(data, production=True)  # would raise on a contact placeholder
    assert profile.placeholders == []
    assert profile.unanswered == ["fees", "insurance", "referral", "waiting_time", "directions",
                                  "parking", "doctor_background"]
