"""Staff take over, reply as themselves and hand back, over a real `rasa run` + action server.

One stack serves every channel (REST, the widget's socket.io, Telegram, WhatsApp Cloud,
Twilio WhatsApp; the platforms are the local stand-ins) with the clock fixed in opening
hours. The test process plays the staff console: it calls `bot.handoff` with the stack's
URL and API token, exactly as the console does. The widget patient is a real socket.io
client; "the bot said nothing" is checked by the next message the patient receives being
the staff member's, never by a sleep.
"""

from __future__ import annotations

import queue
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio
import sqlalchemy as sa

from bot import handoff
from bot.load import CREDENTIALS as WIDGET_CREDENTIALS  # REST + the widget's socket.io
from bot.load import ORIGIN
from bot.settings import get_settings
from tests.channels.harness import PATIENT_WA_ID, PHONE_NUMBER_ID
from tests.conftest import RasaStack, confirmed_profile, start_stack
from tests.standins.telegram_api import TelegramBotApiStandIn, text_update
from tests.standins.twilio_api import TwilioApiStandIn
from tests.standins.whatsapp_graph import WhatsAppGraphStandIn, text_notification

IN_HOURS = "2026-11-30T10:00:00+08:00"  # a Monday morning: the clinic is open
CHAT_ID = 7123456
TWILIO_SID = "AC" + "3" * 32
TWILIO_NUMBER = "whatsapp:+14155238886"
TWILIO_PATIENT = "whatsapp:+447700900555"
NURSE = "Nurse Lee"
CREDENTIALS = WIDGET_CREDENTIALS + f"""\
bot.channels.telegram.TelegramInput:
  access_token: ${{TELEGRAM_ACCESS_TOKEN}}
  verify: clinic_test_bot
  webhook_url: https://clinic.example/webhooks/telegram/webhook
  secret_token: ${{TELEGRAM_SECRET_TOKEN}}
  api_base_url: ${{TELEGRAM_API_BASE_URL}}
bot.channels.whatsapp.WhatsAppCloudInput:
  access_token: ${{WHATSAPP_ACCESS_TOKEN}}
  app_secret: ${{WHATSAPP_APP_SECRET}}
  verify_token: ${{WHATSAPP_VERIFY_TOKEN}}
  phone_number_id: "{PHONE_NUMBER_ID}"
  api_base_url: ${{WHATSAPP_API_BASE_URL}}
  api_version: v19.0
bot.channels.twilio_whatsapp.TwilioWhatsAppInput:
  account_sid: {TWILIO_SID}
  auth_token: ${{TWILIO_AUTH_TOKEN}}
  twilio_number: "{TWILIO_NUMBER}"
  api_base_url: ${{TWILIO_API_BASE_URL}}
"""


class Relay:
    """The running stack and the platform stand-ins behind it."""

    def __init__(self, tmp: Path, model: Path) -> None:
        """Start the stand-ins, then Rasa and the action server in front of them."""
        self.telegram_token = f"7000000003:{secrets.token_urlsafe(26)}"
        self.telegram_secret = secrets.token_urlsafe(32)
        self.telegram = TelegramBotApiStandIn(self.telegram_token, username="clinic_test_bot")
        graph_token = "EAAG" + secrets.token_urlsafe(32)
        self.app_secret = secrets.token_hex(16)
        self.graph = WhatsAppGraphStandIn(graph_token, PHONE_NUMBER_ID)
        self.twilio_token = secrets.token_hex(16)
        self.twilio = TwilioApiStandIn(TWILIO_SID, self.twilio_token)
        for standin in (self.telegram, self.graph, self.twilio):
            standin.start()
        self.stack: RasaStack = start_stack(
            tmp,
            model,
            credentials=CREDENTIALS,
            extra_env={
                "CLINIC_CLOCK": IN_HOURS,
                "PRACTICE_PROFILE": str(confirmed_profile(tmp)),
                "TELEGRAM_ACCESS_TOKEN": self.telegram_token,
                "TELEGRAM_SECRET_TOKEN": self.telegram_secret,
                "TELEGRAM_API_BASE_URL": self.telegram.base_url,
                "WHATSAPP_ACCESS_TOKEN": graph_token,
                "WHATSAPP_APP_SECRET": self.app_secret,
                "WHATSAPP_VERIFY_TOKEN": secrets.token_urlsafe(24),
                "WHATSAPP_API_BASE_URL": self.graph.base_url,
                "TWILIO_AUTH_TOKEN": self.twilio_token,
                "TWILIO_API_BASE_URL": self.twilio.base_url,
            },
        )

    def webhook(self, channel: str) -> str:
        """A channel's webhook on the stack."""
        return f"{self.stack.rasa_url}/webhooks/{channel}/webhook"

    def stop(self) -> None:
        """Stop the stack and the stand-ins."""
        for name in self.stack.procs:
            self.stack.stop(name)
        for standin in (self.telegram, self.graph, self.twilio):
            standin.stop()


@pytest.fixture(scope="module")
def relay(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    """One stack with every channel for this module's tests."""
    running = Relay(tmp_path_factory.mktemp("relay"), model_path)
    yield running
    running.stop()


@pytest.fixture()
def console(relay: Relay, monkeypatch: pytest.MonkeyPatch) -> Iterator[RasaStack]:
    """This process calls `bot.handoff` as the console does: the stack's URL, token, database."""
    monkeypatch.setenv("RASA_URL", relay.stack.rasa_url)
    monkeypatch.setenv("RASA_AUTH_TOKEN", relay.stack.token)
    monkeypatch.setenv("DATABASE_URL", relay.stack.database_url)
    get_settings.cache_clear()
    yield relay.stack
    get_settings.cache_clear()


class Patient:
    """A widget patient: a real socket.io client whose bot messages land in a queue."""

    def __init__(self, stack: RasaStack, session_id: str) -> None:
        """Connect (long-polling, as the tests' clients do) and open a persistent session."""
        self.session_id = session_id
        self.conversation = f"web:{session_id}"
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        confirmed: queue.Queue[str] = queue.Queue()
        self.client = socketio.Client(reconnection=False)
        self.client.on("bot_uttered", self.messages.put)
        self.client.on("session_confirm", confirmed.put)
        self.client.connect(stack.rasa_url, headers={"Origin": ORIGIN}, transports=["polling"], wait_timeout=10)
        self.client.emit("session_request", {"session_id": session_id})
        assert confirmed.get(timeout=10) == session_id

    def say(self, text: str) -> None:
        """Send a message; returns once Rasa has handled it (the channel's acknowledgement)."""
        ack = self.client.call("user_uttered", {"message": text, "session_id": self.session_id}, timeout=60)
        assert ack == {"ok": True}

    def wait_for(self, wanted: Callable[[dict[str, Any]], bool], timeout: float = 30) -> list[dict[str, Any]]:
        """Messages up to and including the first `wanted` one.

        Socket.io handlers run in threads, so the tail of an earlier turn may still be
        arriving: callers look at what came before the wanted message when it matters.
        """
        received: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while not received or not wanted(received[-1]):
            received.append(self.messages.get(timeout=max(0.1, deadline - time.monotonic())))
        return received

    def answer(self, text: str, containing: str) -> str:
        """Say `text` and wait for the bot's message containing `containing`."""
        self.say(text)
        return self.wait_for(lambda m: containing in (m.get("text") or ""))[-1]["text"] or ""

    def close_tab(self) -> None:
        """What closing the browser tab does: the socket disconnects (not waiting for the long-poll)."""
        threading.Thread(target=self.client.disconnect, daemon=True).start()


def _staff_messages(stack: RasaStack, conversation: str) -> list[dict[str, Any]]:
    events = stack.tracker(conversation)["events"]
    return [e for e in events if e["event"] == "bot" and (e.get("metadata") or {}).get("clinic")]


def test_widget_takeover_reply_emergency_and_release(console: RasaStack) -> None:
    """Joined marker; the bot is silent; the staff reply arrives marked; emergencies still alert; release."""
    patient = Patient(console, "staffwidget" + uuid.uuid4().hex[:8])
    try:
        patient.answer("/greet", "automated assistant")
        # in hours, on a channel staff can reply on, the patient is told a person will reply here
        patient.answer("can I talk to a person please", "Someone will reply here")

        assert handoff.take(patient.conversation, NURSE) == handoff.Delivery(True, None)
        joined = patient.wait_for(lambda m: "clinic" in m)[-1]
        assert joined["text"] == "Nurse Lee from the clinic has joined the chat."
        assert joined["clinic"] == {"kind": "staff_joined", "name": NURSE}

        patient.say("what is sciatica")  # handled by Rasa; the bot must not answer it
        reply = "Hello, I'm Nurse Lee. How long have you had the pain?"
        assert handoff.send_staff_reply(patient.conversation, reply, NURSE) == handoff.Delivery(True, None)
        received = patient.wait_for(lambda m: "clinic" in m)
        assert received == [{"text": reply, "clinic": {"kind": "staff", "name": NURSE}}]  # nothing from the bot

        assert "A&E" in patient.answer("I can't pee since this morning", "A&E")

        assert handoff.release(patient.conversation, NURSE) == handoff.Delivery(True, None)
        left = patient.wait_for(lambda m: "clinic" in m and m["clinic"]["kind"] == "staff_left")[-1]
        assert left["text"] == "Nurse Lee has left; the assistant is back."
        assert left["clinic"] == {"kind": "staff_left", "name": NURSE}
        assert "sciatic nerve" in patient.answer("what is sciatica", "sciatic nerve")
    finally:
        patient.close_tab()

    tracker = console.tracker(patient.conversation)
    assert tracker["slots"]["human_takeover"] is False
    kinds = [e["metadata"]["clinic"]["kind"] for e in _staff_messages(console, patient.conversation)]
    assert [k for k in kinds if k.startswith("staff")] == ["staff_joined", "staff", "staff_left"]
    events = tracker["events"]
    asked = next(i for i, e in enumerate(events) if e["event"] == "user" and e.get("text") == "what is sciatica")
    first_bot = next(e for e in events[asked:] if e["event"] == "bot")
    assert first_bot["metadata"]["clinic"]["kind"] == "staff"  # the transcript agrees: the bot was silent
    engine = sa.create_engine(console.database_url)
    with engine.connect() as conn:
        status, taken_by = conn.execute(
            sa.text("SELECT status, taken_by FROM handoff_requests WHERE conversation_id = :c"),
            {"c": patient.conversation},
        ).one()
    engine.dispose()
    assert (status, taken_by) == ("released", NURSE)


def test_closed_widget_tab_is_reported_and_nothing_is_sent(console: RasaStack) -> None:
    """After the patient's socket disconnects, a reply says so to staff and is not sent."""
    patient = Patient(console, "closedtab" + uuid.uuid4().hex[:8])
    patient.answer("/greet", "automated assistant")
    assert handoff.reachability(patient.conversation) == handoff.Delivery(True, None)
    patient.close_tab()
    deadline = time.monotonic() + 30
    while handoff.reachability(patient.conversation).delivered:  # wait for the disconnect
        assert time.monotonic() < deadline, "the server never saw the socket disconnect"
        time.sleep(0.2)

    delivery = handoff.send_staff_reply(patient.conversation, "Are you still there?", NURSE)
    assert delivery == handoff.Delivery(False, handoff.TAB_CLOSED)
    assert _staff_messages(console, patient.conversation) == []


def test_presence_route_needs_the_api_token(console: RasaStack) -> None:
    """Which conversations have a browser open is not public."""
    url = f"{console.rasa_url}/webhooks/socketio/presence"
    assert requests.get(url, params={"conversation_id": "web:x"}, timeout=10).status_code == 401
    wrong = requests.get(url, params={"conversation_id": "web:x", "token": "nope"}, timeout=10)
    assert wrong.status_code == 401
    right = requests.get(url, params={"conversation_id": "web:x", "token": console.token}, timeout=10)
    assert right.json() == {"conversation_id": "web:x", "connected": False}


def test_telegram_patient_gets_the_staff_reply(relay: Relay, console: RasaStack) -> None:
    """Joined, the reply signed "<name> (clinic staff): ...", left: all sent to the chat."""
    relay.telegram.wait_for("setWebhook", timeout=60)
    assert relay.telegram.deliver(text_update(CHAT_ID, "/greet"), url=relay.webhook("telegram"), timeout=60).ok
    before = len(relay.telegram.wait_for("sendMessage", timeout=30))
    conversation = f"telegram:{CHAT_ID}"

    assert handoff.take(conversation, NURSE).delivered
    assert handoff.send_staff_reply(conversation, "Hello, how can I help?", NURSE).delivered
    assert handoff.release(conversation, NURSE).delivered
    sent = relay.telegram.wait_for("sendMessage", count=before + 3, timeout=30)[before:]
    assert [(str(c.params["chat_id"]), c.params["text"]) for c in sent] == [
        (str(CHAT_ID), "Nurse Lee from the clinic has joined the chat."),
        (str(CHAT_ID), "Nurse Lee (clinic staff): Hello, how can I help?"),
        (str(CHAT_ID), "Nurse Lee has left; the assistant is back."),
    ]


def test_whatsapp_cloud_patient_gets_the_staff_reply(relay: Relay, console: RasaStack) -> None:
    """Within the 24-hour window the signed reply goes to the patient's wa id."""
    greet = text_notification(PHONE_NUMBER_ID, PATIENT_WA_ID, "/greet")
    assert WhatsAppGraphStandIn.deliver(relay.webhook("whatsapp"), greet, relay.app_secret, timeout=60).ok
    before = len(relay.graph.wait_for_sent(timeout=30))

    delivery = handoff.send_staff_reply(f"whatsapp:{PATIENT_WA_ID}", "We can see you on Tuesday.", NURSE)
    assert delivery == handoff.Delivery(True, None)
    sent = relay.graph.wait_for_sent(count=before + 1, timeout=30)[before:]
    assert [(m["to"], m["type"], m["text"]["body"]) for m in sent] == [
        (PATIENT_WA_ID, "text", "Nurse Lee (clinic staff): We can see you on Tuesday.")
    ]


def test_twilio_whatsapp_patient_gets_the_staff_reply(relay: Relay, console: RasaStack) -> None:
    """The same through Twilio: the signed reply is a message to the patient's address."""
    response = TwilioApiStandIn.deliver(relay.webhook("twilio_whatsapp"), relay.twilio_token, TWILIO_PATIENT, "/greet")
    assert response.ok
    before = len(relay.twilio.wait_for_sent(timeout=30))

    delivery = handoff.send_staff_reply(f"twilio:{TWILIO_PATIENT}", "We can see you on Tuesday.", NURSE)
    assert delivery == handoff.Delivery(True, None)
    sent = relay.twilio.wait_for_sent(count=before + 1, timeout=30)[before:]
    assert [(m["To"], m["Body"]) for m in sent] == [
        (TWILIO_PATIENT, "Nurse Lee (clinic staff): We can see you on Tuesday.")
    ]


def _old_whatsapp_conversation(stack: RasaStack, wa_id: str, hours_ago: float) -> str:
    """A WhatsApp conversation whose patient last wrote `hours_ago` hours ago."""
    conversation = f"whatsapp:{wa_id}"
    old = {
        "event": "user",
        "text": "my knee hurts",
        "timestamp": time.time() - hours_ago * 3600,
        "input_channel": "whatsapp",
        "parse_data": {"intent": {"name": "describe_symptoms", "confidence": 1.0}, "entities": []},
    }
    response = requests.post(
        f"{stack.rasa_url}/conversations/{conversation}/tracker/events",
        json=[old],
        params={"token": stack.token},
        timeout=30,
    )
    response.raise_for_status()
    return conversation


def test_whatsapp_window_closed_sends_nothing(relay: Relay, console: RasaStack) -> None:
    """Over 24 hours since the patient's last message: the reason, and nothing reaches Meta."""
    conversation = _old_whatsapp_conversation(console, "447700900777", hours_ago=25)
    sent_before = len(relay.graph.sent)

    reply = handoff.send_staff_reply(conversation, "Are you feeling better?", NURSE)
    assert not reply.delivered
    assert reply.reason is not None and "within 24 hours" in reply.reason
    took = handoff.take(conversation, NURSE)
    assert not took.delivered and took.reason is not None and "paused" in took.reason

    assert len(relay.graph.sent) == sent_before  # both calls returned: nothing was sent
    assert console.tracker(conversation)["slots"]["human_takeover"] is True
    assert _staff_messages(console, conversation) == []


def test_rest_conversation_is_reported_as_not_reachable(console: RasaStack) -> None:
    """REST answers only within its request: staff are told, nothing is queued."""
    conversation = f"rest:{uuid.uuid4().hex[:8]}"
    console.say(conversation, "hello")
    delivery = handoff.send_staff_reply(conversation, "Hello from the clinic", NURSE)
    assert delivery == handoff.Delivery(False, handoff.REST_ONLY)
    assert _staff_messages(console, conversation) == []


def test_command_line_says_why_a_reply_was_not_sent(console: RasaStack, capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m bot.handoff reply` exits 1 with the reason; `take` on it pauses the bot anyway."""
    conversation = f"rest:{uuid.uuid4().hex[:8]}"
    console.say(conversation, "hello")
    assert handoff.main(["reply", conversation, "--by", NURSE, "Hello from the clinic"]) == 1
    assert handoff.REST_ONLY in capsys.readouterr().out
    assert handoff.main(["take", conversation, "--by", NURSE]) == 0
    assert "paused for this conversation all the same" in capsys.readouterr().out
    assert console.tracker(conversation)["slots"]["human_takeover"] is True
    assert console.say(conversation, "what is sciatica") == []
