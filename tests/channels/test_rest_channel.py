"""The REST channel over loopback HTTP: what a client sending odd requests would see.

Rasa 3.6's REST channel answered 500 to arrays, scalars, empty bodies and deep nesting,
`200 []` to missing, non-string or blank messages and to `/restart`, passed NUL and control
characters in sender ids on to the tracker store, and recorded any `sender` the client
named, including another channel's patient (`whatsapp:<phone>`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet
from rasa.core.channels.channel import UserMessage
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.channels.intake import DIDNT_CATCH
from bot.channels.rest import RestInput
from bot.settings import get_settings
from tests.channels.harness import ChannelServer, EchoAgent
from tests.standins._server import free_port


@pytest.fixture
def rest_server(agent: EchoAgent) -> Iterator[ChannelServer]:
    """The REST channel served by Sanic in front of the echo agent."""
    server = ChannelServer(RestInput(), agent, free_port()).start()
    yield server
    server.stop()


def post(server: ChannelServer, body: Any, raw: bytes | None = None, **headers: str) -> requests.Response:
    data = raw if raw is not None else json.dumps(body).encode("utf-8")
    return requests.post(
        server.url("/webhook"),
        data=data,
        headers={"Content-Type": "application/json", **headers},
        timeout=10,
    )


def texts(answer: requests.Response) -> list[str]:
    return [m.get("text", "") for m in answer.json()]


def test_sender_ids_are_recorded_under_rest(rest_server: ChannelServer, agent: EchoAgent) -> None:
    for sender in ("pat-1", "rest:pat-2", "crm:42", "a" * 128):
        answer = post(rest_server, {"sender": sender, "message": "hello"})
        assert answer.status_code == 200
        assert texts(answer) == ["You said: hello"]
    assert [m.sender_id for m in agent.received] == ["rest:pat-1", "rest:pat-2", "rest:crm:42", "rest:" + "a" * 128]


@pytest.mark.parametrize(
    "sender",
    ["", "a\x00b", "pat\x1b[31m", "two words", "a" * 129, "pätient", "tab\there", "x\n", 42, None, ["a"], {"a": 1}],
    ids=["empty", "nul", "escape", "space", "129", "non-ascii", "tab", "newline", "int", "null", "list", "object"],
)
def test_invalid_sender_ids_get_a_400_and_reach_nobody(
    rest_server: ChannelServer, agent: EchoAgent, sender: object
) -> None:
    answer = post(rest_server, {"sender": sender, "message": "hello"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_sender"
    assert "A-Z a-z 0-9" in answer.json()["message"]
    assert agent.received == []


@pytest.mark.parametrize(
    "sender",
    ["whatsapp:447700900123", "telegram:7123456", "web:0123456789abcdef", "twilio:whatsapp:+447700900123",
     "WhatsApp:447700900123", "rest:whatsapp:447700900123"],
)
def test_rest_cannot_address_another_channels_conversation(
    rest_server: ChannelServer, agent: EchoAgent, sender: str
) -> None:
    answer = post(rest_server, {"sender": sender, "message": "/affirm"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_sender"
    assert agent.received == []


@pytest.mark.parametrize(
    "raw",
    [b"", b"   ", b"[]", b'["hello"]', b"42", b'"hello"', b"null", b"true", b"{", b"\xff\xfe{}",
     b'{"sender": "a", "message": "\xc3\x28"}', b"[" * 1000 + b"]" * 1000,
     b'{"sender": "a", "message": ' + b"[" * 1000 + b"]" * 1000 + b"}"],
    ids=["empty", "blank", "array", "array-of-text", "number", "string", "null", "bool", "truncated",
         "bom-garbage", "invalid-utf8", "deep-array", "deep-message"],
)
def test_malformed_bodies_get_a_400_with_a_json_error(
    rest_server: ChannelServer, agent: EchoAgent, raw: bytes
) -> None:
    answer = post(rest_server, None, raw=raw)
    assert answer.status_code == 400
    assert answer.json()["ok"] is False and answer.json()["error"]
    assert agent.received == []


@pytest.mark.parametrize(
    "body",
    [{"sender": "a"}, {"message": "hi"}, {"sender": "a", "message": 42}, {"sender": "a", "message": None},
     {"sender": "a", "message": ["hi"]}, {"sender": "a", "message": {"text": "hi"}},
     {"sender": "a", "message": "hi", "metadata": "x"}],
    ids=["no-message", "no-sender", "int", "null", "list", "object", "metadata-string"],
)
def test_wrong_fields_get_a_400_naming_the_field(
    rest_server: ChannelServer, agent: EchoAgent, body: dict[str, Any]
) -> None:
    answer = post(rest_server, body)
    assert answer.status_code == 400
    assert answer.json()["error"] in {"missing_message", "missing_sender", "invalid_message", "invalid_metadata"}
    assert agent.received == []


@pytest.mark.parametrize("message", ["", "   ", "\n\t", "\x00\x00", " \x07 "])
def test_blank_messages_get_a_didnt_catch_that_reply(
    rest_server: ChannelServer, agent: EchoAgent, message: str
) -> None:
    answer = post(rest_server, {"sender": "pat", "message": message})
    assert answer.status_code == 200
    assert texts(answer) == [DIDNT_CATCH]
    assert agent.received == []


def test_lone_surrogates_and_control_characters_never_reach_rasa(
    rest_server: ChannelServer, agent: EchoAgent
) -> None:
    raw = b'{"sender": "pat", "message": "knee \\ud800 pain\\u0000 at night\\u001b"}'
    answer = post(rest_server, None, raw=raw)
    assert answer.status_code == 200
    assert texts(answer) == ["You said: knee \ufffd pain  at night"]
    json.dumps(agent.received[-1].text).encode("utf-8")  # storable, loggable


@pytest.mark.parametrize(
    ("typed", "seen"),
    [('/greet{"red_flag": "bladder"}', 'greet{"red_flag": "bladder"}'), ("/restart", "restart"),
     ("/session_start", "session_start"), ("//affirm", "affirm"), ("/book_appointment", "book_appointment")],
)
def test_typed_payloads_are_plain_text(
    rest_server: ChannelServer, agent: EchoAgent, typed: str, seen: str
) -> None:
    answer = post(rest_server, {"sender": "pat", "message": typed})
    assert answer.status_code == 200
    assert texts(answer) == [f"You said: {seen}"]


def test_a_lone_slash_gets_a_didnt_catch_that_reply(rest_server: ChannelServer) -> None:
    assert texts(post(rest_server, {"sender": "pat", "message": " / "})) == [DIDNT_CATCH]


def test_open_payload_and_offered_buttons_pass_as_payloads(
    rest_server: ChannelServer, agent: EchoAgent
) -> None:
    """`/greet` (the widget's first message) and the buttons the bot just offered."""
    store = InMemoryTrackerStore(Domain.empty())
    offered = '/inform{"condition": "knee"}'
    tracker = DialogueStateTracker.from_events(
        "rest:pat",
        [UserUttered("hi"), BotUttered("Where?", {"buttons": [{"title": "Knee", "payload": offered}]})],
    )
    import asyncio

    asyncio.run(store.save(tracker))
    agent.tracker_store = store  # type: ignore[attr-defined]

    assert texts(post(rest_server, {"sender": "pat", "message": "/greet"})) == ["You said: /greet"]
    assert texts(post(rest_server, {"sender": "pat", "message": offered})) == [f"You said: {offered}"]
    # Offered to `pat`, not to anyone else, and not with other entities.
    assert texts(post(rest_server, {"sender": "other", "message": offered})) == [f"You said: {offered[1:]}"]
    forged = '/inform{"condition": "knee", "red_flag": "bladder"}'
    assert texts(post(rest_server, {"sender": "pat", "message": forged})) == [f"You said: {forged[1:]}"]


def test_long_messages_are_cut_for_nlu_but_kept_whole_in_metadata(
    rest_server: ChannelServer, agent: EchoAgent
) -> None:
    settings = get_settings()
    message = "My back hurts. " * 400 + "Since yesterday I cannot control my bladder."
    answer = post(rest_server, {"sender": "pat", "message": message})
    assert answer.status_code == 200
    [note, echo] = texts(answer)
    assert "read the first 1,000 characters" in note
    received = agent.received[-1]
    assert len(received.text) == settings.nlu_max_chars
    assert received.metadata["full_text"] == message
    assert received.metadata["full_text"].endswith("cannot control my bladder.")
    assert echo == f"You said: {received.text}"

    short = post(rest_server, {"sender": "pat", "message": "short"})
    assert texts(short) == ["You said: short"]
    assert "full_text" not in agent.received[-1].metadata


def test_full_text_is_capped_and_bodies_over_64_kb_are_refused(
    rest_server: ChannelServer, agent: EchoAgent
) -> None:
    answer = post(rest_server, {"sender": "pat", "message": "x" * 30_000})
    assert answer.status_code == 200
    assert len(agent.received[-1].metadata["full_text"]) == 20_000

    huge = post(rest_server, {"sender": "pat", "message": "x" * 70_000})
    assert huge.status_code == 413
    ten_mb = post(rest_server, None, raw=b'{"sender": "pat", "message": "' + b"y" * 10_000_000 + b'"}')
    assert ten_mb.status_code == 413
    assert len(agent.received) == 1


def test_production_needs_a_token_for_rest(
    rest_server: ChannelServer, agent: EchoAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOT_ENV", "production")
    monkeypatch.setenv("SPOOL_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("SMTP_HOST", "smtp.clinic.test")
    monkeypatch.setenv("NOTIFY_EMAIL_TO", "reception@clinic.test")
    for name in ("RASA_AUTH_TOKEN", "ACTION_SERVER_SECRET"):
        monkeypatch.setenv(name, "p" * 32)
    get_settings.cache_clear()
    off = post(rest_server, {"sender": "pat", "message": "hello"})
    assert off.status_code == 403 and off.json()["error"] == "rest_channel_disabled"

    monkeypatch.setenv("REST_CHANNEL_TOKEN", "t" * 32)
    get_settings.cache_clear()
    assert post(rest_server, {"sender": "pat", "message": "hello"}).status_code == 401
    wrong = post(rest_server, {"sender": "pat", "message": "hello"}, Authorization="Bearer " + "u" * 32)
    assert wrong.status_code == 401
    right = post(rest_server, {"sender": "pat", "message": "hello"}, Authorization="Bearer " + "t" * 32)
    assert right.status_code == 200 and texts(right) == ["You said: hello"]
    assert len(agent.received) == 1


def test_a_client_cannot_supply_full_text(rest_server: ChannelServer, agent: EchoAgent) -> None:
    """`metadata["full_text"]` feeds the red-flag detector: only the channel may set it."""
    body = {"sender": "pat", "message": "hello", "metadata": {"full_text": "I cannot control my bladder", "page": "/"}}
    assert post(rest_server, body).status_code == 200
    assert agent.received[-1].metadata == {"page": "/"}


# -- message ids: a re-send (after a timeout or a 502) is answered once ------------------------


class HoldingAgent(EchoAgent):
    """Echoes, but holds "slow" until released and fails "boom" the first time."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.failed = False

    async def handle_message(self, message: UserMessage) -> None:
        if message.text == "boom" and not self.failed:
            self.failed = True
            raise RuntimeError("the server failed while answering")
        await super().handle_message(message)
        while message.text == "slow" and not self.release.is_set():
            await asyncio.sleep(0.02)


@pytest.fixture
def holding() -> Iterator[tuple[ChannelServer, HoldingAgent]]:
    agent = HoldingAgent()
    server = ChannelServer(RestInput(), agent, free_port()).start()
    yield server, agent
    agent.release.set()
    server.stop()


def test_a_resent_message_is_answered_once(holding: tuple[ChannelServer, HoldingAgent]) -> None:
    server, agent = holding
    first = post(server, {"sender": "pat-1", "message": "my knee hurts", "message_id": "m-1"})
    assert texts(first) == ["You said: my knee hurts"]
    again = post(server, {"sender": "pat-1", "message": "my knee hurts", "message_id": "m-1"})
    assert again.status_code == 200 and again.json() == []
    assert again.headers["X-Message-Status"] == "duplicate"
    other = post(server, {"sender": "pat-2", "message": "hi", "message_id": "m-1"})  # ids are per patient
    assert texts(other) == ["You said: hi"]
    assert [m.text for m in agent.received] == ["my knee hurts", "hi"]


def test_a_message_still_being_answered_is_refused_with_retry_after(
    holding: tuple[ChannelServer, HoldingAgent]
) -> None:
    server, agent = holding
    body = {"sender": "pat-3", "message": "slow", "message_id": "m-2"}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answering = pool.submit(post, server, body)
        deadline = time.monotonic() + 10
        while not agent.received:
            assert time.monotonic() < deadline, "the first request never reached the agent"
            time.sleep(0.02)
        busy = post(server, body)
        assert busy.status_code == 409
        assert busy.json()["error"] == "in_progress" and busy.headers["Retry-After"] == "3"
        agent.release.set()
        assert texts(answering.result(timeout=10)) == ["You said: slow"]
    assert post(server, body).headers["X-Message-Status"] == "duplicate"
    assert [m.text for m in agent.received] == ["slow"]


def test_a_message_whose_answer_failed_is_answered_when_sent_again(
    holding: tuple[ChannelServer, HoldingAgent]
) -> None:
    server, agent = holding
    body = {"sender": "pat-4", "message": "boom", "message_id": "m-3"}
    assert post(server, body).json() == []  # the failure is logged; nothing was said
    assert texts(post(server, body)) == ["You said: boom"]


def test_a_malformed_message_id_gets_a_400(rest_server: ChannelServer, agent: EchoAgent) -> None:
    for bad in (12, "", "a" * 65, "has space", "semi;colon"):
        answer = post(rest_server, {"sender": "pat-5", "message": "hi", "message_id": bad})
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_message_id", bad
    assert agent.received == []
