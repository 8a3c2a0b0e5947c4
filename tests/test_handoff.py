"""Staff takeover and replies without a running Rasa: who may be reached, what the policies do.

The end-to-end paths over a real `rasa run` are in tests/test_staff_reply_e2e.py; here the
decisions behind them are checked on their own: the reachability rules per channel
(WhatsApp's 24-hour window at its edge), Rasa being down, how a staff reply is signed on
messaging channels, and the dialogue policies with the project's real domain.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot import handoff
from bot.channels.markers import messaging_text
from bot.policies import HumanTakeoverPolicy, SafetyPolicy
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)


@pytest.fixture()
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """`bot.clock.now()` is NOW."""
    from bot.settings import get_settings

    monkeypatch.setenv("CLINIC_CLOCK", NOW.isoformat())
    get_settings.cache_clear()
    return NOW


def _tracker_json(channel: str | None, last_message: datetime | None, external_after: bool = False) -> dict[str, Any]:
    events: list[dict[str, Any]] = [{"event": "action", "name": "action_session_start", "timestamp": 1.0}]
    if last_message is not None:
        events.append({"event": "user", "text": "hi", "timestamp": last_message.timestamp(), "metadata": {}})
    if external_after:  # a staff trigger later than the patient's message does not count
        events.append({"event": "user", "text": "EXTERNAL: staff_reply", "timestamp": NOW.timestamp(),
                       "metadata": {"is_external": True}})
    return {"latest_input_channel": channel, "events": events}


@pytest.mark.parametrize("channel", ["whatsapp", "twilio_whatsapp"])
def test_whatsapp_window_is_24_hours_after_the_patients_last_message(fixed_clock: datetime, channel: str) -> None:
    inside = handoff.reach_of(_tracker_json(channel, NOW - timedelta(hours=23, minutes=59), external_after=True))
    assert inside == handoff.Delivery(True, None)
    outside = handoff.reach_of(_tracker_json(channel, NOW - timedelta(hours=24, minutes=1), external_after=True))
    assert not outside.delivered
    assert outside.reason is not None and "29 Nov 2026 at 01:59 UTC" in outside.reason


def test_telegram_is_reachable_however_old_the_conversation(fixed_clock: datetime) -> None:
    assert handoff.reach_of(_tracker_json("telegram", NOW - timedelta(days=30))).delivered


def test_widget_is_reachable_only_while_a_browser_is_connected(fixed_clock: datetime) -> None:
    tracker = _tracker_json("socketio", NOW)
    assert handoff.reach_of(tracker, connected=True) == handoff.Delivery(True, None)
    assert handoff.reach_of(tracker, connected=False) == handoff.Delivery(False, handoff.TAB_CLOSED)


@pytest.mark.parametrize(
    "channel,last,reason",
    [
        ("rest", NOW, handoff.REST_ONLY),
        (None, None, handoff.NO_PATIENT),
        ("socketio", None, handoff.NO_PATIENT),
    ],
)
def test_unreachable_conversations_say_why(
    fixed_clock: datetime, channel: str | None, last: datetime | None, reason: str
) -> None:
    assert handoff.reach_of(_tracker_json(channel, last)) == handoff.Delivery(False, reason)


def test_an_unknown_channel_is_not_reachable(fixed_clock: datetime) -> None:
    delivery = handoff.reach_of(_tracker_json("cmdline", NOW))
    assert not delivery.delivered and delivery.reason is not None and "(cmdline)" in delivery.reason


def test_rasa_down_is_reported_for_every_call() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    down = handoff.Delivery(False, handoff.RASA_DOWN)
    assert handoff.reachability("web:abcdefgh12", rasa_url=nowhere) == down
    assert handoff.send_staff_reply("web:abcdefgh12", "hello", "Nurse Lee", rasa_url=nowhere) == down
    assert handoff.take("web:abcdefgh12", "Nurse Lee", rasa_url=nowhere) == down
    assert handoff.release("web:abcdefgh12", "Nurse Lee", rasa_url=nowhere) == down


def test_empty_and_overlong_replies_are_refused_before_anything_is_sent() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # never called: refused first
    assert handoff.send_staff_reply("web:x", "   ", "Nurse Lee", rasa_url=nowhere) == handoff.Delivery(
        False, handoff.EMPTY_REPLY
    )
    long = "x" * (handoff.REPLY_MAX_CHARS + 1)
    assert handoff.send_staff_reply("web:x", long, "Nurse Lee", rasa_url=nowhere) == handoff.Delivery(
        False, handoff.TOO_LONG
    )


def test_delivery_is_a_frozen_value() -> None:
    delivery = handoff.Delivery(True, None)
    with pytest.raises(AttributeError):
        delivery.delivered = False  # type: ignore[misc]


def test_messaging_channels_sign_staff_replies_only() -> None:
    staff = {"clinic": {"kind": "staff", "name": "Nurse Lee"}}
    assert messaging_text("See you at 3.", staff) == "Nurse Lee (clinic staff): See you at 3."
    joined = {"clinic": {"kind": "staff_joined", "name": "Nurse Lee"}}
    assert messaging_text("Nurse Lee from the clinic has joined the chat.", joined) == (
        "Nurse Lee from the clinic has joined the chat."
    )
    assert messaging_text("Hello!", {}) == "Hello!"


# -- the dialogue policies, with the real domain ----------------------------------------


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(ROOT / "domain.yml")


def _policy(cls: Any, tmp_path: Path) -> Any:
    return cls.create(
        cls.get_default_config(),
        LocalModelStorage(tmp_path),
        Resource(cls.__name__),
        ExecutionContext(GraphSchema({}), "test"),
    )


def _predicted(policy: Any, events: list[Event], domain: Domain) -> str | None:
    tracker = DialogueStateTracker.from_events("web:abcdefgh12", events, domain.slots)
    prediction = policy.predict_action_probabilities(tracker, domain)
    if max(prediction.probabilities) < 1.0:
        return None  # abstained
    return domain.action_names_or_texts[prediction.probabilities.index(1.0)]


def _taken_over(*after: Event) -> list[Event]:
    return [ActionExecuted(ACTION_LISTEN_NAME), SlotSet("human_takeover", True), *after]


def test_takeover_relays_a_staff_reply_then_listens(domain: Domain, tmp_path: Path) -> None:
    policy = _policy(HumanTakeoverPolicy, tmp_path)
    staff = UserUttered.create_external("staff_reply", [{"entity": "staff_text", "value": "Hi"}])
    assert _predicted(policy, _taken_over(staff), domain) == "action_relay_staff_reply"
    after = _taken_over(staff, ActionExecuted("action_relay_staff_reply"))
    assert _predicted(policy, after, domain) == ACTION_LISTEN_NAME


def test_a_patient_typing_a_staff_intent_is_not_relayed(domain: Domain, tmp_path: Path) -> None:
    policy = _policy(HumanTakeoverPolicy, tmp_path)
    typed = UserUttered("/staff_reply", intent={"name": "staff_reply", "confidence": 1.0})
    assert _predicted(policy, _taken_over(typed), domain) == ACTION_LISTEN_NAME  # silent, not relayed


def test_takeover_keeps_the_bot_silent_for_patient_messages(domain: Domain, tmp_path: Path) -> None:
    policy = _policy(HumanTakeoverPolicy, tmp_path)
    patient = UserUttered("what is sciatica", intent={"name": "ask_sciatica", "confidence": 0.9})
    assert _predicted(policy, _taken_over(patient), domain) == ACTION_LISTEN_NAME
    not_taken = [ActionExecuted(ACTION_LISTEN_NAME), patient]
    assert _predicted(policy, not_taken, domain) is None


def test_emergency_during_takeover_still_gets_the_safety_reply(domain: Domain, tmp_path: Path) -> None:
    red_flag = UserUttered(
        "I can't pee since this morning",
        intent={"name": "report_red_flag", "confidence": 0.9},
        entities=[{"entity": "red_flag", "value": "urinary_retention"}],
    )
    assert _predicted(_policy(SafetyPolicy, tmp_path), _taken_over(red_flag), domain) == "action_red_flag"
    assert _predicted(_policy(HumanTakeoverPolicy, tmp_path), _taken_over(red_flag), domain) is None


def test_a_staff_reply_is_never_read_as_a_screening_answer(domain: Domain, tmp_path: Path) -> None:
    staff = UserUttered.create_external("staff_reply", [{"entity": "staff_text", "value": "Yes"}])
    events = [ActionExecuted(ACTION_LISTEN_NAME), SlotSet("safety_screen", "bladder"), staff]
    assert _predicted(_policy(SafetyPolicy, tmp_path), events, domain) is None
