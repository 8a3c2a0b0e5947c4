"""Safety actions with real Trackers and a real database: what the patient reads, what staff get."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List

import pytest
import yaml

from actions.safety import (
    ActionEmergencyReminder,
    ActionRedFlag,
    ActionSafetyScreen,
    ActionSafetyScreenAnswer,
    ActionWarningSigns,
)
from bot.profile import PROFILE_PATH, parse_profile
from bot.safety.reply import dialable
from bot.storage.migrate import upgrade
from bot.storage.repository import Repository
from tests.actions_helpers import has_event, run, slot_events, texts, tracker


@pytest.fixture()
def repo() -> Iterator[Repository]:
    upgrade()
    yield Repository()


def red_flags(*flags: str) -> List[Dict[str, Any]]:
    return [{"entity": "red_flag", "value": flag} for flag in flags]


def test_an_emergency_gets_the_emergency_advice_pauses_the_form_and_alerts_staff(repo: Repository) -> None:
    state = tracker("i cant control my bladder", "report_red_flag", red_flags("bladder_bowel"),
                    active_loop="booking_form", sender="web:rf-1")
    messages, events = run(ActionRedFlag(), state)
    text = texts(messages)
    assert "You mentioned problems controlling your bladder or bowels." in text
    assert "A&E now" in text
    assert has_event(events, event="active_loop", name=None)
    assert slot_events(events)["paused_form"] == "booking_form"
    assert {"title": "Continue my booking", "payload": "/book_appointment"} in messages[-1]["buttons"]
    [alert] = repo.unacknowledged_red_flags()
    assert (alert.conversation_id, alert.flags, alert.tier) == ("web:rf-1", ("bladder_bowel",), "emergency")
    assert alert.categories == ("back_knee",)


def test_an_urgent_flag_says_see_a_doctor_today_not_call_the_emergency_number(repo: Repository) -> None:
    state = tracker("i had breast cancer and now my back hurts", "report_red_flag", red_flags("cancer_history"))
    messages, _ = run(ActionRedFlag(), state)
    text = texts(messages)
    assert "see a doctor today" in text
    assert "A&E now" not in text
    assert repo.unacknowledged_red_flags()[0].tier == "urgent"


def test_the_alert_names_only_what_the_patient_said(repo: Repository) -> None:
    state = tracker("my knee is hot and swollen", "report_red_flag", red_flags("hot_swollen_joint"))
    messages, _ = run(ActionRedFlag(), state)
    text = texts(messages)
    assert "You mentioned a hot, swollen joint." in text
    assert "with fever" not in text.split("You mentioned")[1].split(".")[0]


def test_every_flag_in_one_message_is_named_and_stored(repo: Repository) -> None:
    text = "numbness between my legs and my legs are getting weaker every day"
    state = tracker(text, "report_red_flag", red_flags("saddle_numbness", "leg_weakness"))
    messages, _ = run(ActionRedFlag(), state)
    said = texts(messages)
    assert "numbness around your groin, bottom or between your legs" in said
    assert "weakness in your legs that is getting worse" in said
    assert set(repo.unacknowledged_red_flags()[0].flags) == {"saddle_numbness", "leg_weakness"}
    [alert] = repo.unacknowledged_red_flags()
    per_flag = {(f.flag, f.tier, f.category) for f in repo.alert_flags(alert.id)}
    assert per_flag == {("saddle_numbness", "emergency", "back_knee"), ("leg_weakness", "emergency", "back_knee")}


def test_suicidal_thoughts_get_the_crisis_response_with_an_offer_of_a_person(repo: Repository) -> None:
    state = tracker("i want to end my life", "report_red_flag", red_flags("suicidal_thoughts"),
                    active_loop="booking_form", slots={"full_name": "Alex Tan"})
    messages, events = run(ActionRedFlag(), state)
    text = texts(messages)
    assert "You don't have to face it alone" in text
    assert "crisis helpline" in text  # the profile's crisis line is a placeholder: generic wording
    assert "nothing is in progress" not in text and "cancelled" not in text
    assert "sciatica" not in text.lower() and "Was this helpful" not in text
    buttons = messages[-1]["buttons"]
    assert {"title": "Talk to a person", "payload": "/request_human"} in buttons
    assert {"title": "Continue my booking", "payload": "/book_appointment"} in buttons
    assert "full_name" not in slot_events(events)  # the booking's answers are kept
    [alert] = repo.unacknowledged_red_flags()
    assert alert.categories == ("crisis",) and alert.tier == "emergency"


def test_when_should_i_worry_lists_warning_signs_by_urgency_without_alerting(repo: Repository) -> None:
    messages, events = run(ActionWarningSigns(), tracker("when should i worry", "ask_warning_signs"))
    text = texts(messages)
    assert "Loss of bladder or bowel control" in text and "Cancer now or in the past" in text
    assert text.index("Get help now") < text.index("See a doctor today")
    assert "red_flag" not in slot_events(events)
    assert repo.unacknowledged_red_flags() == []


def test_a_suspected_flag_gets_one_screening_question_and_pauses_the_form() -> None:
    state = tracker("my bum feels weird", "describe_symptoms",
                    [{"entity": "safety_suspect", "value": "saddle_numbness"}], active_loop="booking_form")
    messages, events = run(ActionSafetyScreen(), state)
    assert messages[0]["text"].startswith("Just to check:")
    assert [b["title"] for b in messages[0]["buttons"]] == ["Yes", "No", "Not sure"]
    assert slot_events(events)["safety_screen"] == "saddle_numbness"
    assert slot_events(events)["paused_form"] == "booking_form"


def _screen_answer_state(answer: str, intent: str) -> Any:
    original = {"text": "my bum feels weird, can I book?",
                "intent": {"name": "book_appointment", "confidence": 0.8},
                "entities": [{"entity": "safety_suspect", "value": "saddle_numbness"}]}
    events = [
        {"event": "user", "text": original["text"], "parse_data": original, "input_channel": "rest"},
        {"event": "bot", "text": "Just to check: ..."},
        {"event": "user", "text": answer, "parse_data": {"intent": {"name": intent}}},
    ]
    return tracker(answer, intent, slots={"safety_screen": "saddle_numbness", "paused_form": "booking_form"},
                   events=events)


def test_a_worrying_screening_answer_gives_the_alert(repo: Repository) -> None:
    messages, events = run(ActionSafetyScreenAnswer(), _screen_answer_state("yes", "affirm"))
    assert "numbness around your groin" in texts(messages)
    assert slot_events(events)["safety_screen"] is None
    assert repo.unacknowledged_red_flags()[0].flags == ("saddle_numbness",)


def test_not_sure_counts_as_worrying(repo: Repository) -> None:
    messages, _ = run(ActionSafetyScreenAnswer(), _screen_answer_state("not sure", "nlu_fallback"))
    assert "This could be an emergency." in texts(messages)


def test_a_reassuring_answer_resumes_the_form_and_answers_the_original_message(repo: Repository) -> None:
    messages, events = run(ActionSafetyScreenAnswer(), _screen_answer_state("no", "deny"))
    assert texts(messages) == "Thank you, that's reassuring."
    assert has_event(events, event="active_loop", name="booking_form")
    replayed = [e for e in events if e.get("event") == "user"]
    assert replayed[0]["text"] == "my bum feels weird, can I book?"
    assert replayed[0]["parse_data"]["entities"] == []
    assert repo.unacknowledged_red_flags() == []


def test_yes_after_the_crisis_response_hands_over_to_a_person() -> None:
    from actions.conversation import ActionHandleYesNo

    said, events = run(ActionHandleYesNo(), tracker("yes please", "affirm", slots={"offer": "human"}))
    assert not has_event(events, event="followup")  # handed over in this action
    assert "call you back" in texts(said)  # hours unconfirmed: a call back is offered first
    messages, events = run(ActionHandleYesNo(), tracker("no", "deny", slots={"offer": "human"}))
    assert "I'm here if you want to keep talking" in texts(messages)
    assert not has_event(events, event="followup")


def test_every_alert_message_is_marked_as_an_emergency_for_the_widget(repo: Repository) -> None:
    state = tracker("i cant control my bladder", "report_red_flag", red_flags("bladder_bowel"))
    messages, _ = run(ActionRedFlag(), state)
    assert len(messages) > 1
    # the shipped profile's emergency number is a placeholder: no number to tap
    assert [m["clinic"] for m in messages] == [{"kind": "emergency"}] * len(messages)


def test_the_alert_offers_tap_to_call_once_the_emergency_number_is_filled_in(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    filled = dict(yaml.safe_load(PROFILE_PATH.read_text(encoding="utf-8")))
    filled["emergency_number"] = "995"
    monkeypatch.setattr("actions.safety.get_profile", lambda: parse_profile(filled, production=False))
    state = tracker("back pain and a fever", "report_red_flag", red_flags("fever_with_back_pain"))
    messages, _ = run(ActionRedFlag(), state)
    assert {m["clinic"]["kind"] for m in messages} == {"urgent"}
    assert {m["clinic"].get("tel") for m in messages} == {"995"}
    emergency = run(ActionRedFlag(), tracker("i cant control my bladder", "report_red_flag",
                                             red_flags("bladder_bowel")))[0]
    assert emergency[0]["clinic"] == {"kind": "emergency", "tel": "995"}
    assert "call 995" in texts(emergency)


def test_the_crisis_response_is_marked_as_crisis(repo: Repository) -> None:
    messages, _ = run(ActionRedFlag(), tracker("i want to end my life", "report_red_flag",
                                                red_flags("suicidal_thoughts")))
    assert {m["clinic"]["kind"] for m in messages} == {"crisis"}


def test_the_numbers_in_tel_links_keep_only_digits_and_a_leading_plus() -> None:
    assert dialable("995") == "995"
    assert dialable("+65 6000 0000") == "+6560000000"
    assert dialable("Samaritans") is None


def reminded(flags: List[str], repo: Repository) -> List[Dict[str, Any]]:
    """What "what should I do?" right after the alert for `flags` gets; no new alert is stored."""
    before = len(repo.unacknowledged_red_flags())
    state = tracker("what should i do", "ask_capabilities", slots={"red_flag": True, "red_flags_detected": flags})
    messages, events = run(ActionEmergencyReminder(), state)
    assert events == [] and len(repo.unacknowledged_red_flags()) == before
    return messages


def test_what_should_i_do_after_an_emergency_repeats_what_to_do_now_and_offers_no_booking(
    repo: Repository,
) -> None:
    messages = reminded(["chest_pain"], repo)
    text = texts(messages)
    assert text.startswith("⚠️ This could be an emergency.")
    assert "go to the nearest A&E now" in text and "Don't wait for an appointment" in text
    assert not any(m.get("buttons") for m in messages)
    assert all(m["clinic"]["kind"] == "emergency" for m in messages)  # the widget's alert style


def test_what_should_i_do_after_an_urgent_flag_repeats_see_a_doctor_today_and_offers_a_booking(
    repo: Repository,
) -> None:
    messages = reminded(["cancer_history"], repo)
    text = texts(messages)
    assert "see a doctor today" in text and "A&E now" not in text
    assert [b["payload"] for b in messages[-1]["buttons"]] == ["/request_human", "/book_appointment"]


def test_what_should_i_do_after_the_crisis_response_repeats_where_to_reach_out(repo: Repository) -> None:
    messages = reminded(["suicidal_thoughts"], repo)
    assert texts(messages).startswith("Please reach out now:")
    assert [b["payload"] for b in messages[-1]["buttons"]] == ["/request_human"]
    assert all(m["clinic"]["kind"] == "crisis" for m in messages)
