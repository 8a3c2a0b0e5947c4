"""Two Rasa servers, one Redis: a staff reply sent through one reaches a widget on the other.

Behind a load balancer the widget's socket.io connection stays on one Rasa server (nginx's
`ip_hash`), while the console talks to whichever server `RASA_URL` names. Here two real
`rasa run` stacks share one PostgreSQL schema (tracker store), the atomic Redis lock store
and `REDIS_URL` (db 12, one key prefix for this module, removed afterwards). The patient is
a real socket.io client connected to server A; the test process plays the console, calling
`bot.handoff` with server B's URL and token. What the patient and the staff member notice is
checked: B says the browser is there, the "joined" notice and the reply arrive on A's socket,
and once the tab is closed B says the patient cannot be reached. Re-sent messages: answered
once across the two servers, and answered by B when A was killed before answering (last in
the module: server A stays down).
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import socketio
import sqlalchemy as sa

from bot import handoff
from bot.channels.claims import LEASE_SECONDS, RETRY_AFTER_SECONDS
from bot.channels.store import ChannelCache, MemoryStore
from bot.load import CREDENTIALS, ORIGIN  # REST + the widget's socket.io, one allowed origin
from bot.settings import get_settings
from tests.conftest import PG_URL, RasaStack, confirmed_profile, start_stack

REDIS_URL = "redis://127.0.0.1:6379/12"
IN_HOURS = "2026-11-30T10:00:00+08:00"  # a Monday morning: the clinic is open
NURSE = "Nurse Lee"


@dataclass
class Pair:
    """Servers A (the patient's socket) and B (the console's `RASA_URL`)."""

    a: RasaStack
    b: RasaStack
    database_url: str


@pytest.fixture(scope="module")
def pair(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Two stacks on one PostgreSQL schema and one Redis prefix, for this module."""
    tmp = tmp_path_factory.mktemp("two-servers")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    prefix = "widget" + uuid.uuid4().hex[:10]
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    database_url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    env = {
        "REDIS_URL": REDIS_URL,
        "CHANNEL_CACHE_PREFIX": f"{prefix}:",
        "ACTION_SERVER_SECRET": uuid.uuid4().hex,
        "CLINIC_CLOCK": IN_HOURS,
        "PRACTICE_PROFILE": str(confirmed_profile(tmp)),
    }
    lock_store = (f"lock_store:\n  type: bot.lock_store.AtomicRedisLockStore\n  url: {REDIS_URL}\n"
                  f"  key_prefix: {prefix}\n")
    stacks: list[RasaStack] = []
    try:
        for name in ("a", "b"):
            folder = tmp / name
            folder.mkdir()
            stacks.append(start_stack(folder, model_path, database_url, env, CREDENTIALS, extra_endpoints=lock_store))
        yield Pair(stacks[0], stacks[1], database_url)
    finally:
        for stack in stacks:
            for process in stack.procs:
                stack.stop(process)
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture()
def console(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> Iterator[RasaStack]:
    """This process calls `bot.handoff` as the console does, with server B's URL and token."""
    monkeypatch.setenv("RASA_URL", pair.b.rasa_url)
    monkeypatch.setenv("RASA_AUTH_TOKEN", pair.b.token)
    monkeypatch.setenv("DATABASE_URL", pair.database_url)
    get_settings.cache_clear()
    yield pair.b
    get_settings.cache_clear()


class Patient:
    """A widget patient on one server: a real socket.io client whose bot messages land in a queue."""

    def __init__(self, stack: RasaStack, session_id: str) -> None:
        """Connect (long-polling) to `stack` and open a persistent session."""
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
        """Send a message; returns once Rasa has handled it."""
        ack = self.client.call("user_uttered", {"message": text, "session_id": self.session_id}, timeout=60)
        assert ack == {"ok": True}

    def next_marked(self, timeout: float = 30) -> dict[str, Any]:
        """The next message carrying a `clinic` marker (staff joined, staff reply...)."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.messages.get(timeout=max(0.1, deadline - time.monotonic()))
            if "clinic" in message:
                return message

    def close_tab(self) -> None:
        """What closing the browser tab does: the socket disconnects."""
        threading.Thread(target=self.client.disconnect, daemon=True).start()


def _presence(stack: RasaStack, conversation: str) -> bool:
    answer = requests.get(
        f"{stack.rasa_url}/webhooks/socketio/presence",
        params={"conversation_id": conversation, "token": stack.token},
        timeout=10,
    )
    answer.raise_for_status()
    return bool(answer.json()["connected"])


def test_staff_reply_through_one_server_reaches_the_widget_on_the_other(pair: Pair, console: RasaStack) -> None:
    patient = Patient(pair.a, "twoservers" + uuid.uuid4().hex[:8])
    try:
        patient.say("/greet")
        assert patient.messages.get(timeout=60)["text"]  # answered by server A

        # server B, which holds no socket, answers for the browser on server A
        assert _presence(pair.b, patient.conversation) is True
        assert _presence(pair.b, "web:nobodyhere" + uuid.uuid4().hex[:8]) is False
        assert handoff.reachability(patient.conversation) == handoff.Delivery(True, None)

        assert handoff.take(patient.conversation, NURSE) == handoff.Delivery(True, None)
        joined = patient.next_marked()
        assert joined["text"] == "Nurse Lee from the clinic has joined the chat."

        reply = "Hello, I'm Nurse Lee. How long have you had the pain?"
        assert handoff.send_staff_reply(patient.conversation, reply, NURSE) == handoff.Delivery(True, None)
        assert patient.next_marked() == {"text": reply, "clinic": {"kind": "staff", "name": NURSE}}
    finally:
        patient.close_tab()

    deadline = time.monotonic() + 15
    while _presence(pair.b, patient.conversation) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _presence(pair.b, patient.conversation) is False
    assert handoff.send_staff_reply(patient.conversation, "Are you still there?", NURSE) == handoff.Delivery(
        False, handoff.TAB_CLOSED
    )


def test_a_message_re_sent_to_the_other_server_after_reconnecting_is_answered_once(pair: Pair) -> None:
    session_id = "resend" + uuid.uuid4().hex[:10]
    message = {"message": "what is sciatica", "session_id": session_id, "message_id": "m-" + uuid.uuid4().hex[:8]}
    on_a = Patient(pair.a, session_id)
    try:
        assert on_a.client.call("user_uttered", message, timeout=60) == {"ok": True}
        assert "sciatic nerve" in on_a.messages.get(timeout=60)["text"]
    finally:
        on_a.close_tab()
    on_b = Patient(pair.b, session_id)  # the connection dropped; the widget reconnects elsewhere
    try:
        assert on_b.client.call("user_uttered", message, timeout=60) == {"ok": True, "status": "duplicate"}
    finally:
        on_b.close_tab()
    assert _stored_user_messages(pair, on_a.conversation) == 1


def _stored_user_messages(pair: Pair, conversation: str) -> int:
    engine = sa.create_engine(pair.database_url)
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT count(*) FROM events WHERE sender_id = :s AND type_name = 'user'"),
            {"s": conversation},
        ).scalar()
    engine.dispose()
    return int(stored or 0)


def _claim_value(conversation: str, message_id: str) -> str | None:
    """What the servers hold in Redis for one widget message id (None: nothing)."""
    hashed = ChannelCache(MemoryStore(), "socketio:message-ids", 60, "").hashed(f"{conversation}|{message_id}")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"*:socketio:message-ids:{hashed}"))
        value = client.get(keys[0]) if keys else None
    finally:
        client.close()
    return None if value is None else value.decode()


def test_a_message_whose_server_was_killed_before_answering_is_answered_by_the_other(pair: Pair) -> None:
    """A crash between receiving and answering must not turn the widget's re-send into a "duplicate"."""
    session_id = "crash" + uuid.uuid4().hex[:10]
    message_id = "m-" + uuid.uuid4().hex[:8]
    message = {"message": "what is sciatica", "session_id": session_id, "message_id": message_id}
    conversation = f"web:{session_id}"
    actions_a = pair.a.procs["actions"]
    os.kill(actions_a.pid, signal.SIGSTOP)  # server A will wait on its action server mid-turn
    try:
        on_a = Patient(pair.a, session_id)
        on_a.client.emit("user_uttered", message)
        deadline = time.monotonic() + 30
        while not (_claim_value(conversation, message_id) or "").startswith("claim:"):
            assert time.monotonic() < deadline, "server A never claimed the message"
            time.sleep(0.05)
        pair.a.procs["rasa"].kill()  # a crash in the middle of the turn
        pair.a.procs["rasa"].wait(timeout=30)
        on_a.close_tab()
    finally:
        os.kill(actions_a.pid, signal.SIGCONT)
    assert _stored_user_messages(pair, conversation) == 0  # A stored nothing of the turn

    on_b = Patient(pair.b, session_id)  # the widget reconnects to the other server and re-sends
    try:
        acks = [on_b.client.call("user_uttered", message, timeout=120)]
        # A's claim outlives A by up to one lease; B asks the widget to try again meanwhile
        assert acks[0] == {"ok": False, "error": "in_progress", "retry_after": RETRY_AFTER_SECONDS}
        deadline = time.monotonic() + LEASE_SECONDS + 60  # then B waits out A's conversation lock (10 s)
        while acks[-1] != {"ok": True}:
            assert acks[-1]["error"] == "in_progress" and time.monotonic() < deadline, acks
            time.sleep(RETRY_AFTER_SECONDS)
            acks.append(on_b.client.call("user_uttered", message, timeout=120))
        assert "sciatic nerve" in on_b.messages.get(timeout=10)["text"]
        assert on_b.client.call("user_uttered", message, timeout=60) == {"ok": True, "status": "duplicate"}
    finally:
        on_b.close_tab()
    assert _stored_user_messages(pair, conversation) == 1
