"""Our socket.io channel against Rasa's: the rasa#13027 defect, origins, ids, the demo server.

Python-side clients use python-socketio's sync `Client` over HTTP long-polling: its asyncio
WebSocket client needs a newer aiohttp than Rasa pins.
"""

from __future__ import annotations

import http.client
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
import socketio

from bot.channels.socketio import OriginConfigError, SocketIOInput, parse_origins
from bot.settings import get_settings

if TYPE_CHECKING:
    from tests.web.conftest import Stack

Connect = Callable[[str, str], "tuple[socketio.Client, queue.Queue[Any]]"]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Factory: a polling socket.io client whose bot replies land in a queue."""
    clients: list[socketio.Client] = []

    def make(url: str, origin: str) -> tuple[socketio.Client, queue.Queue[Any]]:
        replies: queue.Queue[Any] = queue.Queue()
        client = socketio.Client(reconnection=False)
        client.on("bot_uttered", replies.put)
        client.on("session_confirm", lambda sid: replies.put(("session", sid)))
        client.connect(url, headers={"Origin": origin}, transports=["polling"], wait_timeout=5)
        clients.append(client)
        return client, replies

    yield make
    for client in clients:
        close(client)


def close(client: socketio.Client) -> None:
    """Disconnect without waiting for the open long-poll (up to 25 s) to return."""
    threading.Thread(target=client.disconnect, daemon=True).start()


def start_session(client: socketio.Client, replies: queue.Queue[Any], sid: str) -> None:
    """Ask for a persistent session and wait for the server to confirm it."""
    client.emit("session_request", {"session_id": sid})
    assert replies.get(timeout=5) == ("session", sid)


def test_stock_rasa_channel_never_delivers_replies_with_session_persistence(
    make_stack: Callable[..., Stack], connect: Connect
) -> None:
    """rasa#13027: Rasa 3.6.21 forgets to await enter_room, so the reply goes nowhere."""
    stock = make_stack(stock=True)
    client, replies = connect(stock.bot.url, stock.site.url)
    start_session(client, replies, "stocksession01")
    client.emit("user_uttered", {"message": "hello", "session_id": "stocksession01"})
    with pytest.raises(queue.Empty):
        replies.get(timeout=3)
    assert stock.bot.received()[-1]["sender_id"] == "stocksession01"  # handled, not delivered


def test_our_channel_delivers_replies_with_session_persistence(
    stack: Stack, connect: Connect
) -> None:
    """The fix: with session persistence the reply reaches the client."""
    client, replies = connect(stack.bot.url, stack.site.url)
    start_session(client, replies, "oursession0001")
    client.emit("user_uttered", {"message": "hello", "session_id": "oursession0001"})
    reply = replies.get(timeout=5)
    assert reply["text"].startswith("Hello!")
    assert [b["payload"] for b in reply["quick_replies"]] == ["/ask_hours", "/book"]
    assert stack.bot.received()[-1]["sender_id"] == "web:oursession0001"


def test_same_session_id_continues_the_conversation_on_a_new_socket(
    stack: Stack, connect: Connect
) -> None:
    """A new socket with the same session id continues the same conversation."""
    for _ in range(2):
        client, replies = connect(stack.bot.url, stack.site.url)
        start_session(client, replies, "samesession001")
        client.emit("user_uttered", {"message": "again", "session_id": "samesession001"})
        assert replies.get(timeout=5)["text"] == "You asked: again"
        close(client)
    senders = [t["sender_id"] for t in stack.bot.received() if t["text"] == "again"]
    assert senders[-2:] == ["web:samesession001", "web:samesession001"]


def test_resent_message_id_is_answered_once(stack: Stack, connect: Connect) -> None:
    """A message re-sent after a reconnect (same message_id) is handled once."""
    client, replies = connect(stack.bot.url, stack.site.url)
    start_session(client, replies, "dupsession0001")
    message = {"message": "only once", "session_id": "dupsession0001", "message_id": "m1"}
    client.call("user_uttered", message, timeout=5)
    client.call("user_uttered", message, timeout=5)  # e.g. re-sent after a reconnect
    texts = [t["text"] for t in stack.bot.received() if t["sender_id"] == "web:dupsession0001"]
    assert texts == ["only once"]


def test_bot_messages_keep_their_clinic_marker(stack: Stack, connect: Connect) -> None:
    """Staff replies reach the widget with who is speaking; ordinary answers carry no marker."""
    client, replies = connect(stack.bot.url, stack.site.url)
    start_session(client, replies, "markersession1")
    client.emit("user_uttered", {"message": "talk to a person", "session_id": "markersession1"})
    got = [replies.get(timeout=5) for _ in range(3)]
    assert "clinic" not in got[0]
    assert got[1]["clinic"] == {"kind": "staff_joined", "name": "Sarah"}
    assert got[2]["clinic"] == {"kind": "staff", "name": "Sarah"}
    assert got[2]["text"].startswith("Hello, this is Sarah")

    client.emit("user_uttered", {"message": "chest pain", "session_id": "markersession1"})
    alert = [replies.get(timeout=5) for _ in range(3)]
    assert [m["clinic"] for m in alert] == [{"kind": "emergency", "tel": "995"}] * 3
    assert [b["payload"] for b in alert[-1]["quick_replies"]] == ["/book_appointment"]


def test_a_forms_question_says_which_slot_it_asks_for(stack: Stack, connect: Connect) -> None:
    """Rasa's `utter_ask_<slot>` response is sent as `clinic={"kind": "ask", "slot": ...}`."""
    client, replies = connect(stack.bot.url, stack.site.url)
    start_session(client, replies, "asksession0001")
    client.emit("user_uttered", {"message": "please call me", "session_id": "asksession0001"})
    assert replies.get(timeout=5)["clinic"] == {"kind": "ask", "slot": "phone"}
    client.emit("user_uttered", {"message": "email me", "session_id": "asksession0001"})
    reply = replies.get(timeout=5)
    assert reply["clinic"] == {"kind": "ask", "slot": "email"}
    assert [b["payload"] for b in reply["quick_replies"]] == ["skip"]


def test_invalid_session_id_gets_a_fresh_one(stack: Stack, connect: Connect) -> None:
    """Session ids that are not short tokens are replaced, not used as sender ids."""
    client, replies = connect(stack.bot.url, stack.site.url)
    client.emit("session_request", {"session_id": "../../etc <script>"})
    kind, sid = replies.get(timeout=5)
    assert kind == "session" and len(sid) == 32 and sid.isalnum()


def test_disallowed_origin_is_refused_by_the_socketio_server(stack: Stack) -> None:
    """The socket.io server itself refuses a handshake from another website."""
    handshake = f"{stack.bot.url}/socket.io/?EIO=4&transport=polling"
    bad = requests.get(handshake, headers={"Origin": "https://evil.example"}, timeout=5)
    assert bad.status_code == 400
    assert "Access-Control-Allow-Origin" not in bad.headers
    good = requests.get(handshake, headers={"Origin": stack.site.url}, timeout=5)
    assert good.status_code == 200
    # Exactly one header, even though the server runs with Rasa's `--cors` (sanic-cors):
    # requests would join a doubled header as "origin, origin", which browsers reject.
    assert good.headers["Access-Control-Allow-Origin"] == stack.site.url
    with pytest.raises(socketio.exceptions.ConnectionError):
        socketio.Client(reconnection=False).connect(
            stack.bot.url, headers={"Origin": "https://evil.example"}, transports=["polling"]
        )


@pytest.mark.parametrize("origins", ["*", ["https://clinic.example", "*"], "https://*.example"])
def test_wildcard_origins_are_refused(origins: str | list[str]) -> None:
    """A wildcard origin would let any website use the bot, so it is refused."""
    with pytest.raises(OriginConfigError):
        SocketIOInput.from_credentials({"cors_allowed_origins": origins})


def test_origins_from_credentials_or_settings() -> None:
    """Origins come from credentials.yml, else ALLOWED_ORIGINS; paths are not origins."""
    listed = SocketIOInput.from_credentials(
        {"cors_allowed_origins": "https://www.clinic.example/, https://clinic.example"}
    )
    assert listed.cors_allowed_origins == ["https://www.clinic.example", "https://clinic.example"]
    default = SocketIOInput.from_credentials({})
    assert default.cors_allowed_origins == list(get_settings().allowed_origins)
    assert default.session_persistence is True
    with pytest.raises(OriginConfigError):
        parse_origins(["https://clinic.example/chat"])


def test_credentials_yml_entry_loads_our_channel(tmp_path: Path) -> None:
    """The credentials.yml entry `rasa run` reads builds our class, not Rasa's."""
    from rasa.core.run import create_http_input_channels

    credentials = tmp_path / "credentials.yml"
    credentials.write_text(
        "bot.channels.socketio.SocketIOInput:\n"
        "  session_persistence: true\n"
        "  socketio_path: /socket.io\n"
        "  cors_allowed_origins:\n"
        "    - https://www.clinic.example\n"
    )
    [channel] = create_http_input_channels(None, str(credentials))
    assert isinstance(channel, SocketIOInput)
    assert channel.name() == "socketio"
    assert channel.url_prefix() == "socketio"
    assert channel.cors_allowed_origins == ["https://www.clinic.example"]


def _raw_get(site_url: str, path: str) -> http.client.HTTPResponse:
    """GET without client-side path normalisation (requests would collapse `..`)."""
    host, port = site_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("GET", path)
    return conn.getresponse()


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/", "text/html; charset=utf-8"),
        ("/services.html", "text/html; charset=utf-8"),
        ("/static/widget.js", "text/javascript; charset=utf-8"),
        ("/static/widget.css", "text/css; charset=utf-8"),
        ("/static/vendor/socket.io.min.js", "text/javascript; charset=utf-8"),
        ("/static/vendor/socket.io-client.LICENSE", "text/plain; charset=utf-8"),
    ],
)
def test_demo_server_content_types(stack: Stack, path: str, content_type: str) -> None:
    """Each file type is served with its own content type and nosniff."""
    response = _raw_get(stack.site.url, path)
    assert response.status == 200
    assert response.getheader("Content-Type") == content_type
    assert response.getheader("X-Content-Type-Options") == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/static/../serve.py",
        "/static/%2e%2e/serve.py",
        "/static/..%2f..%2fsettings.py",
        "/../../bot/settings.py",
        "/%2e%2e/%2e%2e/pyproject.toml",
        "/static/..\\serve.py",
        "/serve.py",
        "/static/vendor/",
        "/static/.secret",
    ],
)
def test_demo_server_refuses_traversal(stack: Stack, path: str) -> None:
    """Nothing outside the demo and static folders can be read."""
    assert _raw_get(stack.site.url, path).status == 404


def test_demo_page_gets_rasa_url_and_strict_csp(stack: Stack) -> None:
    """Demo pages get the bot URL and a CSP allowing only the site and the bot."""
    response = _raw_get(stack.site.url, "/")
    body = response.read().decode()
    assert f'serverUrl: "{stack.bot.url}"' in body
    assert "{{RASA_URL}}" not in body
    csp = response.getheader("Content-Security-Policy") or ""
    assert "default-src 'self'" in csp and "'sha256-" in csp and "unsafe-inline" not in csp
    assert f"ws://127.0.0.1:{stack.bot.url.rsplit(':', 1)[1]}" in csp
