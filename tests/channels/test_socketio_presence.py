"""Widget presence and messages shared in Redis: one Rasa server reaching another's browsers.

Two `SharedPresence` instances stand for two Rasa servers (each its own Redis client, one
key prefix) on the real Redis at 127.0.0.1, db 12; the keys are removed afterwards. A Redis
that cannot be reached is a closed port. Then two of our socket.io channels, each served by
its own Sanic server and loop (tests/channels/harness.py), with a real socket.io client on
one and a message sent through the other's output channel, as Rasa sends a staff reply. The
full path, two `rasa run` servers and the console's calls, is
tests/test_widget_two_servers_e2e.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
import requests
import socketio

from bot.channels.presence import SharedPresence
from bot.channels.socketio import SocketIOInput
from bot.settings import Settings, SettingsError, get_settings
from tests.channels.harness import ChannelServer, EchoAgent
from tests.standins._server import free_port, wait_until

REDIS_URL = os.environ.get("TEST_SHORT_IDS_REDIS_URL", "redis://127.0.0.1:6379/12")
CONVERSATION = "web:presence" + uuid.uuid4().hex[:8]
ORIGIN = "http://127.0.0.1:8080"
TOKEN = uuid.uuid4().hex


@pytest.fixture
def prefix() -> Iterator[str]:
    """A fresh key prefix on db 12, its keys deleted afterwards."""
    value = f"test-presence-{uuid.uuid4().hex[:12]}:"
    yield value
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{value}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
async def servers(prefix: str) -> AsyncIterator[tuple[SharedPresence, SharedPresence]]:
    """Two servers' presence records, sharing the prefix."""
    one, two = SharedPresence(REDIS_URL, prefix), SharedPresence(REDIS_URL, prefix)
    yield one, two
    await one.close()
    await two.close()


async def test_a_browser_on_one_server_is_connected_for_the_other(
    servers: tuple[SharedPresence, SharedPresence], prefix: str
) -> None:
    one, two = servers
    assert await two.connected(CONVERSATION) is False
    await one.joined("sid-1", CONVERSATION)
    assert await two.connected(CONVERSATION) is True
    assert await two.connected("web:someoneelse") is False
    await one.left("sid-1")
    assert await two.connected(CONVERSATION) is False
    await one.left("sid-1")  # a second disconnect is harmless


async def test_two_tabs_count_until_the_last_one_closes(servers: tuple[SharedPresence, SharedPresence]) -> None:
    one, two = servers
    await one.joined("sid-a", CONVERSATION)
    await two.joined("sid-b", CONVERSATION)  # the same conversation open on both servers
    await one.left("sid-a")
    assert await one.connected(CONVERSATION) is True
    await two.left("sid-b")
    assert await one.connected(CONVERSATION) is False


async def test_a_socket_switching_conversation_leaves_the_earlier_one(
    servers: tuple[SharedPresence, SharedPresence],
) -> None:
    one, two = servers
    await one.joined("sid-1", CONVERSATION)
    await one.joined("sid-1", CONVERSATION + "x")
    assert await two.connected(CONVERSATION) is False
    assert await two.connected(CONVERSATION + "x") is True


async def test_keys_hold_no_session_ids_and_expire(
    servers: tuple[SharedPresence, SharedPresence], prefix: str
) -> None:
    one, _ = servers
    await one.joined("sid-1", CONVERSATION)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        [key] = [k.decode() for k in client.scan_iter(match=f"{prefix}*")]
        assert CONVERSATION.removeprefix("web:") not in key
        assert 0 < client.pttl(key) <= one.ttl_seconds * 1000
    finally:
        client.close()


async def test_a_live_server_renews_and_a_dead_one_stops_counting(prefix: str) -> None:
    alive = SharedPresence(REDIS_URL, prefix, ttl_seconds=0.6)
    dead = SharedPresence(REDIS_URL, prefix, ttl_seconds=0.6)
    asker = SharedPresence(REDIS_URL, prefix)
    try:
        await alive.joined("sid-alive", CONVERSATION)
        await dead.joined("sid-dead", CONVERSATION + "x")
        await dead.close()  # stops renewing without saying goodbye, as a crashed server would
        await asyncio.sleep(1.0)
        assert await asker.connected(CONVERSATION) is True  # renewed every 0.2 s
        assert await asker.connected(CONVERSATION + "x") is False
    finally:
        await alive.close()
        await asker.close()


async def test_unreachable_redis_is_logged_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    down = SharedPresence(f"redis://127.0.0.1:{free_port()}/12", "test-presence-down:")
    try:
        with caplog.at_level(logging.WARNING, logger="bot.channels.presence"):
            await down.joined("sid-1", CONVERSATION)
            assert await down.connected(CONVERSATION) is None  # the route answers for itself then
            await down.left("sid-1")
    finally:
        await down.close()
    assert "Could not record widget presence" in caplog.text
    assert "Could not ask Redis who is connected" in caplog.text


def test_socketio_redis_url_comes_from_its_own_setting_or_redis_url() -> None:
    assert Settings.from_env({}).socketio_redis_url == ""
    assert Settings.from_env({"REDIS_URL": "redis://127.0.0.1:6379/1"}).socketio_redis_url == "redis://127.0.0.1:6379/1"
    both = {"REDIS_URL": "redis://127.0.0.1:6379/1", "SOCKETIO_REDIS_URL": "redis://127.0.0.1:6379/3"}
    assert Settings.from_env(both).socketio_redis_url == "redis://127.0.0.1:6379/3"
    with pytest.raises(SettingsError, match="SOCKETIO_REDIS_URL"):
        Settings.from_env({"SOCKETIO_REDIS_URL": "http://127.0.0.1:6379"})


# -- two socket.io channel servers -------------------------------------------------------------


def _widget_server(agent: EchoAgent) -> ChannelServer:
    channel = SocketIOInput.from_credentials({"session_persistence": True, "cors_allowed_origins": [ORIGIN]})
    return ChannelServer(channel, agent, free_port()).start()


def _connected(server: ChannelServer, conversation: str) -> bool:
    answer = requests.get(server.url("/presence"), params={"conversation_id": conversation, "token": TOKEN},
                          timeout=10)
    answer.raise_for_status()
    return bool(answer.json()["connected"])


def _patient(server: ChannelServer, session_id: str, received: list[dict[str, object]]) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.on("bot_uttered", received.append)
    confirmed: list[str] = []
    client.on("session_confirm", confirmed.append)
    client.connect(f"http://127.0.0.1:{server.port}", headers={"Origin": ORIGIN}, transports=["polling"],
                   wait_timeout=10)
    client.emit("session_request", {"session_id": session_id})
    wait_until(lambda: confirmed == [session_id])
    return client


def _close_tab(client: socketio.Client) -> None:
    """The socket disconnects; not waiting for the client's pending long-poll to return."""
    threading.Thread(target=client.disconnect, daemon=True).start()


def _send_through(server: ChannelServer, conversation: str, text: str) -> None:
    """What Rasa does for a staff reply: the channel's output channel, in the server's loop."""
    channel = server.channel
    assert isinstance(channel, SocketIOInput) and server._loop is not None
    output = channel.get_output_channel()
    assert output is not None
    future = asyncio.run_coroutine_threadsafe(output.send_text_message(conversation, text), server._loop)
    future.result(10)


def test_message_sent_through_one_server_reaches_the_browser_on_the_other(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("CHANNEL_CACHE_PREFIX", prefix)
    monkeypatch.setenv("RASA_AUTH_TOKEN", TOKEN)
    get_settings.cache_clear()
    agent = EchoAgent()
    a, b = _widget_server(agent), _widget_server(agent)
    received: list[dict[str, object]] = []
    session_id = "shared" + uuid.uuid4().hex[:10]
    try:
        patient = _patient(a, session_id, received)
        assert _connected(b, f"web:{session_id}") is True
        _send_through(b, f"web:{session_id}", "Hello from the clinic")
        wait_until(lambda: received == [{"text": "Hello from the clinic"}])
        _close_tab(patient)
        wait_until(lambda: not _connected(b, f"web:{session_id}"))
    finally:
        a.stop()
        b.stop()


def test_without_redis_each_server_knows_only_its_own_browsers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("SOCKETIO_REDIS_URL", raising=False)
    monkeypatch.setenv("RASA_AUTH_TOKEN", TOKEN)
    get_settings.cache_clear()
    agent = EchoAgent()
    a, b = _widget_server(agent), _widget_server(agent)
    received: list[dict[str, object]] = []
    session_id = "local" + uuid.uuid4().hex[:10]
    try:
        patient = _patient(a, session_id, received)
        assert _connected(a, f"web:{session_id}") is True
        assert _connected(b, f"web:{session_id}") is False
        _send_through(b, f"web:{session_id}", "Nobody gets this")
        _send_through(a, f"web:{session_id}", "Hello from the clinic")
        wait_until(lambda: len(received) == 1)
        assert received == [{"text": "Hello from the clinic"}]
        _close_tab(patient)
        wait_until(lambda: not _connected(a, f"web:{session_id}"))
    finally:
        a.stop()
        b.stop()
