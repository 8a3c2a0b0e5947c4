"""The staff actions and the handoff's promise, with real rasa-sdk Trackers.

What the patient reads when staff join, reply and leave (text and widget marker), and
that the assistant promises "someone will reply here" only in opening hours on a channel a
staff reply can reach; out of hours nothing promises a reply in the chat.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from actions.handoff import ActionRequestHuman
from actions.staff import ActionRelayStaffReply, ActionStaffJoined, ActionStaffLeft
from bot.profile import get_profile
from bot.settings import get_settings
from bot.storage.migrate import upgrade
from tests.actions_helpers import run, slot_events, texts, tracker
from tests.conftest import confirmed_profile

NURSE = [{"entity": "staff_name", "value": "Nurse Lee"}]
OPEN = "2026-11-30T10:00:00+08:00"  # Monday morning
CLOSED = "2026-11-29T22:00:00+08:00"  # Sunday night


def test_joining_silences_the_bot_and_tells_the_patient_who_joined() -> None:
    messages, events = run(ActionStaffJoined(), tracker("EXTERNAL: staff_take", "staff_take", NURSE))
    assert messages[0]["text"] == "Nurse Lee from the clinic has joined the chat."
    assert messages[0]["clinic"] == {"kind": "staff_joined", "name": "Nurse Lee"}
    assert slot_events(events) == {"human_takeover": True}


def test_leaving_gives_the_conversation_back_to_the_bot() -> None:
    messages, events = run(ActionStaffLeft(), tracker("EXTERNAL: staff_release", "staff_release", NURSE))
    assert messages[0]["text"] == "Nurse Lee has left; the assistant is back."
    assert messages[0]["clinic"] == {"kind": "staff_left", "name": "Nurse Lee"}
    assert slot_events(events) == {"human_takeover": False}


def test_a_staff_reply_is_said_verbatim_with_the_staff_marker() -> None:
    text = "Please bring your MRI <report> & any letters."
    entities = [*NURSE, {"entity": "staff_text", "value": text}]
    messages, events = run(ActionRelayStaffReply(), tracker("EXTERNAL: staff_reply", "staff_reply", entities))
    assert [(m["text"], m["clinic"]) for m in messages] == [(text, {"kind": "staff", "name": "Nurse Lee"})]
    assert events == []


def test_a_staff_reply_without_text_says_nothing() -> None:
    messages, _ = run(ActionRelayStaffReply(), tracker("EXTERNAL: staff_reply", "staff_reply", NURSE))
    assert messages == []


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """Opening-hours clock per test, on the profile with its hours confirmed; a database.

    Unconfirmed hours are never used to say when staff are in, so the wording in and out of
    hours is only reached with confirmed ones.
    """
    monkeypatch.setenv("PRACTICE_PROFILE", str(confirmed_profile(tmp_path)))
    get_profile.cache_clear()
    upgrade()
    yield monkeypatch
    get_settings.cache_clear()
    get_profile.cache_clear()


def _ask_for_a_person(channel: str, clock_value: str, monkeypatch: pytest.MonkeyPatch, **slots: object) -> str:
    monkeypatch.setenv("CLINIC_CLOCK", clock_value)
    get_settings.cache_clear()
    text = "can I talk to a person"
    events = [{"event": "user", "text": text, "input_channel": channel,
               "parse_data": {"intent": {"name": "request_human", "confidence": 0.9}, "entities": []}}]
    messages, _ = run(ActionRequestHuman(), tracker(text, "request_human", slots=dict(slots), events=events))
    return texts(messages)


@pytest.mark.parametrize("channel", ["socketio", "telegram", "whatsapp", "twilio_whatsapp"])
def test_in_hours_a_reply_here_is_promised_where_staff_can_reply(channel: str, clock: pytest.MonkeyPatch) -> None:
    assert "Someone will reply here" in _ask_for_a_person(channel, OPEN, clock)


def test_in_hours_rest_is_not_promised_a_reply_in_the_chat(clock: pytest.MonkeyPatch) -> None:
    said = _ask_for_a_person("rest", OPEN, clock)
    assert "reply" not in said and "asked our staff to look at this conversation" in said


@pytest.mark.parametrize("channel", ["socketio", "whatsapp"])
def test_out_of_hours_nothing_promises_a_reply_in_the_chat(channel: str, clock: pytest.MonkeyPatch) -> None:
    offer = _ask_for_a_person(channel, CLOSED, clock)
    assert "call you back" in offer and "reply" not in offer
    declined = _ask_for_a_person(channel, CLOSED, clock, callback_declined=True)
    assert "when the clinic opens" in declined and "reply" not in declined
