"""The channels' shared layer: retries on the provider stand-ins, and memories shared in Redis.

Retries: the stand-ins answer 5xx, 429 or drop the connection (`fail_next`, `drop_next`), and
the real client code retries through aiohttp-retry until it succeeds, or gives up and reports
the failure the way each channel always has. Shared memory: two connector instances (two
"processes", each its own Sanic server and event loop) share the real Redis at 127.0.0.1
(db 14, a unique key prefix, removed afterwards). The database is pointed at a closed port
in those tests, so the durable replay record is out of the picture and only the shared cache
can tell that a message was seen. Without `CHANNEL_CACHE_URL` the in-process default works
with no server at all. The short ids of long button payloads are shared the same way (on
db 12), and a Redis that cannot be reached (a closed port) costs a pressed button nothing
but its payload: the title still goes through.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
import requests

from bot.channels.buttons import SHORT_IDS_TTL_SECONDS, ButtonMemory, ShortIds
from bot.channels.messaging import RetryPolicy
from bot.channels.store import MemoryStore, RedisStore, channel_store
from bot.channels.telegram import SECRET_HEADER, BotApiClient, TelegramApiError, TelegramInput
from bot.channels.twilio_whatsapp import TwilioWhatsAppOutput
from bot.channels.whatsapp import GraphApiError, GraphClient, WhatsAppCloudInput, WhatsAppCloudOutput
from bot.settings import Settings, SettingsError, get_settings
from tests.channels.harness import (
    BUTTONS,
    HUGE_PAYLOAD,
    LONG_PAYLOAD,
    LONG_TITLE,
    PATIENT_WA_ID,
    PHONE_NUMBER_ID,
    ChannelServer,
    EchoAgent,
    make_telegram_channel,
    serve_whatsapp,
)
from tests.standins._server import free_port, wait_until
from tests.standins.telegram_api import TelegramBotApiStandIn, callback_query_update, text_update
from tests.standins.twilio_api import TwilioApiStandIn
from tests.standins.whatsapp_graph import WhatsAppGraphStandIn, button_reply_notification, text_notification

REDIS_URL = os.environ.get("TEST_CHANNEL_REDIS_URL", "redis://127.0.0.1:6379/14")
SHORT_IDS_REDIS_URL = os.environ.get("TEST_SHORT_IDS_REDIS_URL", "redis://127.0.0.1:6379/12")
CHAT_ID = 4343
FAST = RetryPolicy(attempts=3, first_delay_seconds=0.01, max_delay_seconds=0.05)
DATABASE_DOWN = "postgresql://clinic@127.0.0.1:9/clinic"  # nothing listens on port 9


@pytest.fixture
def shared_redis(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Channels built from now on share Redis db 14 under a fresh prefix (deleted afterwards)."""
    prefix = f"test-channels-{uuid.uuid4().hex[:12]}:"
    monkeypatch.setenv("CHANNEL_CACHE_URL", REDIS_URL)
    monkeypatch.setenv("CHANNEL_CACHE_PREFIX", prefix)
    get_settings.cache_clear()
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def shared_short_ids_redis(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Like `shared_redis`, on db 12 (the short-id tests' own)."""
    prefix = f"test-short-ids-{uuid.uuid4().hex[:12]}:"
    monkeypatch.setenv("CHANNEL_CACHE_URL", SHORT_IDS_REDIS_URL)
    monkeypatch.setenv("CHANNEL_CACHE_PREFIX", prefix)
    get_settings.cache_clear()
    yield prefix
    client = redis.Redis.from_url(SHORT_IDS_REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def redis_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """The channel cache is configured, but nothing listens at its port."""
    monkeypatch.setenv("CHANNEL_CACHE_URL", f"redis://127.0.0.1:{free_port()}/12")
    get_settings.cache_clear()


@pytest.fixture
def in_process_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Redis configured: every process keeps its own memory (the default)."""
    monkeypatch.delenv("CHANNEL_CACHE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    get_settings.cache_clear()


@pytest.fixture
def database_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay record's database is unreachable: only the channel cache can dedupe."""
    monkeypatch.setenv("DATABASE_URL", DATABASE_DOWN)
    get_settings.cache_clear()


def _redis_keys(prefix: str, url: str = REDIS_URL) -> dict[str, int]:
    client = redis.Redis.from_url(url)
    try:
        return {key.decode(): int(client.pttl(key)) for key in client.scan_iter(match=f"{prefix}*")}
    finally:
        client.close()


def _telegram_server(token: str, secret: str, api: TelegramBotApiStandIn, agent: EchoAgent) -> ChannelServer:
    port = free_port()
    return ChannelServer(make_telegram_channel(token, secret, api.base_url, port), agent, port).start()


# -- shared memory in Redis -------------------------------------------------------------------


def test_update_redelivered_to_another_instance_is_handled_once(
    shared_redis: str,
    database_down: None,
    telegram_api: TelegramBotApiStandIn,
    telegram_token: str,
    telegram_secret: str,
) -> None:
    agent = EchoAgent()
    first = _telegram_server(telegram_token, telegram_secret, telegram_api, agent)
    second = _telegram_server(telegram_token, telegram_secret, telegram_api, agent)
    update = text_update(4242, "I need to cancel my appointment")
    headers = {SECRET_HEADER: telegram_secret}
    try:
        statuses = [
            requests.post(server.url("/webhook"), json=update, headers=headers, timeout=10).json()["status"]
            for server in (first, second)
        ]
    finally:
        first.stop()
        second.stop()

    assert statuses == ["processed", "duplicate"]
    assert [m.text for m in agent.received] == ["I need to cancel my appointment"]
    keys = _redis_keys(shared_redis)
    seen = [key for key in keys if key.startswith(f"{shared_redis}telegram:seen:")]
    assert len(seen) == 1
    assert str(update["update_id"]) not in seen[0]  # only an HMAC of the id is stored
    assert 0 < keys[seen[0]] <= 2 * 24 * 3600 * 1000


def test_numbered_reply_received_by_another_instance_picks_the_button(
    shared_redis: str,
    database_down: None,
    whatsapp_credentials: dict[str, str],
    graph_api: WhatsAppGraphStandIn,
) -> None:
    agent = EchoAgent()
    secret = whatsapp_credentials["app_secret"]
    sender = serve_whatsapp(whatsapp_credentials, graph_api, agent)
    receiver = serve_whatsapp(whatsapp_credentials, graph_api, agent)
    try:
        # process A answers "menu 12" with twelve options: a numbered text, remembered in Redis
        menu = text_notification(PHONE_NUMBER_ID, PATIENT_WA_ID, "menu 12")
        assert WhatsAppGraphStandIn.deliver(sender.url("/webhook"), menu, secret).status_code == 200
        numbered = graph_api.wait_for_sent(1)[-1]["text"]["body"]
        assert "2. Book a consultation" in numbered
        buttons_keys = [k for k in _redis_keys(shared_redis) if ":whatsapp:buttons:" in k]
        assert len(buttons_keys) == 1 and PATIENT_WA_ID not in buttons_keys[0]

        # process B receives the patient's "2"
        reply = text_notification(PHONE_NUMBER_ID, PATIENT_WA_ID, "2")
        assert WhatsAppGraphStandIn.deliver(receiver.url("/webhook"), reply, secret).status_code == 200
        wait_until(lambda: len(agent.received) == 2)
    finally:
        sender.stop()
        receiver.stop()

    assert agent.received[1].text == BUTTONS[1]["payload"]
    assert agent.received[1].sender_id == f"whatsapp:{PATIENT_WA_ID}"
    assert not any(":whatsapp:buttons:" in k for k in _redis_keys(shared_redis))  # consumed


async def test_redis_store_claims_once_and_takes_once(shared_redis: str) -> None:
    one, two = RedisStore(REDIS_URL, shared_redis), RedisStore(REDIS_URL, shared_redis)
    try:
        assert await one.claim("t:seen", "abc", 60) is True
        assert await two.claim("t:seen", "abc", 60) is False
        await one.put("t:buttons", "abc", "[]", 60)
        assert await two.get("t:buttons", "abc") == "[]"  # a read leaves it for the next reader
        results = await asyncio.gather(two.take("t:buttons", "abc"), one.take("t:buttons", "abc"))
        assert sorted(results, key=str) == [None, "[]"]
    finally:
        await one.close()
        await two.close()


def test_in_memory_default_needs_no_redis(
    monkeypatch: pytest.MonkeyPatch,
    database_down: None,
    whatsapp_credentials: dict[str, str],
    graph_api: WhatsAppGraphStandIn,
) -> None:
    monkeypatch.delenv("CHANNEL_CACHE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    get_settings.cache_clear()
    assert isinstance(channel_store(), MemoryStore)
    agent = EchoAgent()
    secret = whatsapp_credentials["app_secret"]
    server = serve_whatsapp(whatsapp_credentials, graph_api, agent)
    assert isinstance(server.channel, WhatsAppCloudInput)
    assert isinstance(server.channel.memory.store, MemoryStore)
    try:
        menu = text_notification(PHONE_NUMBER_ID, PATIENT_WA_ID, "menu 12")
        reply = text_notification(PHONE_NUMBER_ID, PATIENT_WA_ID, "2")
        for notification in (menu, reply, reply):  # the "2" is redelivered once
            assert WhatsAppGraphStandIn.deliver(server.url("/webhook"), notification, secret).status_code == 200
        wait_until(lambda: len(agent.received) == 2)
        time.sleep(0.3)
    finally:
        server.stop()
    assert [m.text for m in agent.received] == ["menu 12", BUTTONS[1]["payload"]]


def test_cache_url_comes_from_channel_cache_url_or_redis_url() -> None:
    assert Settings.from_env({"REDIS_URL": "redis://127.0.0.1:6379/1"}).channel_cache_url == "redis://127.0.0.1:6379/1"
    both = {"REDIS_URL": "redis://127.0.0.1:6379/1", "CHANNEL_CACHE_URL": "redis://127.0.0.1:6379/2"}
    assert Settings.from_env(both).channel_cache_url == "redis://127.0.0.1:6379/2"
    assert Settings.from_env({}).channel_cache_url == ""
    with pytest.raises(SettingsError, match="CHANNEL_CACHE_URL"):
        Settings.from_env({"CHANNEL_CACHE_URL": "http://127.0.0.1:6379"})


# -- short ids of long button payloads, shared in Redis ----------------------------------------


def _long_menu_and_press(
    telegram_api: TelegramBotApiStandIn, secret: str, sender: ChannelServer, receivers: list[ChannelServer]
) -> str:
    """`sender` sends the long-payload keyboard; its first button's press reaches each receiver.

    Returns the button's callback data.
    """
    headers = {SECRET_HEADER: secret}
    answer = requests.post(sender.url("/webhook"), json=text_update(CHAT_ID, "menu long"), headers=headers, timeout=10)
    assert answer.json()["status"] == "processed"
    sent = telegram_api.wait_for("sendMessage")[-1]
    data = str(sent.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"])
    for receiver in receivers:
        press = callback_query_update(CHAT_ID, data, sent.result)
        answer = requests.post(receiver.url("/webhook"), json=press, headers=headers, timeout=10)
        assert answer.json()["status"] == "processed"
    return data


def test_long_payload_of_a_button_sent_by_one_instance_is_resolved_by_another(
    shared_short_ids_redis: str,
    database_down: None,
    telegram_api: TelegramBotApiStandIn,
    telegram_token: str,
    telegram_secret: str,
) -> None:
    agent = EchoAgent()
    sender = _telegram_server(telegram_token, telegram_secret, telegram_api, agent)
    receiver = _telegram_server(telegram_token, telegram_secret, telegram_api, agent)
    try:
        data = _long_menu_and_press(telegram_api, telegram_secret, sender, [receiver])
    finally:
        sender.stop()
        receiver.stop()

    assert data.startswith("~") and len(data.encode()) <= 64
    assert [m.text for m in agent.received] == ["menu long", LONG_PAYLOAD]  # not the title
    keys = _redis_keys(shared_short_ids_redis, SHORT_IDS_REDIS_URL)
    [short_id_key] = [k for k in keys if k.startswith(f"{shared_short_ids_redis}telegram:short-ids:")]
    assert data not in short_id_key  # the id is stored as an HMAC, like every key
    assert 0 < keys[short_id_key] <= SHORT_IDS_TTL_SECONDS * 1000  # it expires


def test_whatsapp_reply_id_issued_by_one_instance_is_resolved_by_another(
    shared_short_ids_redis: str,
    database_down: None,
    whatsapp_credentials: dict[str, str],
    graph_api: WhatsAppGraphStandIn,
) -> None:
    agent = EchoAgent()
    secret = whatsapp_credentials["app_secret"]
    sender = serve_whatsapp(whatsapp_credentials, graph_api, agent)
    receiver = serve_whatsapp(whatsapp_credentials, graph_api, agent)
    try:
        menu = text_notification(PHONE_NUMBER_ID, PATIENT_WA_ID, "menu huge")
        assert WhatsAppGraphStandIn.deliver(sender.url("/webhook"), menu, secret).status_code == 200
        reply = graph_api.wait_for_sent(1)[-1]["interactive"]["action"]["buttons"][0]["reply"]
        assert reply["id"].startswith("~")
        press = button_reply_notification(PHONE_NUMBER_ID, PATIENT_WA_ID, reply["id"], reply["title"])
        assert WhatsAppGraphStandIn.deliver(receiver.url("/webhook"), press, secret).status_code == 200
        wait_until(lambda: len(agent.received) == 2)
    finally:
        sender.stop()
        receiver.stop()
    assert agent.received[1].text == HUGE_PAYLOAD


def test_without_redis_each_instance_resolves_only_its_own_ids(
    in_process_cache: None,
    database_down: None,
    telegram_api: TelegramBotApiStandIn,
    telegram_token: str,
    telegram_secret: str,
) -> None:
    """The in-process default as before: another process gets the pressed button's title."""
    agent = EchoAgent()
    sender = _telegram_server(telegram_token, telegram_secret, telegram_api, agent)
    other = _telegram_server(telegram_token, telegram_secret, telegram_api, agent)
    try:
        assert isinstance(sender.channel, TelegramInput) and isinstance(sender.channel.memory.store, MemoryStore)
        _long_menu_and_press(telegram_api, telegram_secret, sender, [other, sender])
    finally:
        sender.stop()
        other.stop()
    assert [m.text for m in agent.received] == ["menu long", LONG_TITLE, LONG_PAYLOAD]


def test_with_redis_unreachable_a_press_still_goes_through_by_its_title(
    redis_down: None,
    database_down: None,
    telegram_api: TelegramBotApiStandIn,
    telegram_token: str,
    telegram_secret: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent = EchoAgent()
    sender = _telegram_server(telegram_token, telegram_secret, telegram_api, agent)
    other = _telegram_server(telegram_token, telegram_secret, telegram_api, agent)
    try:
        assert isinstance(sender.channel, TelegramInput) and isinstance(sender.channel.memory.store, RedisStore)
        with caplog.at_level(logging.WARNING, logger="bot.channels.buttons"):
            _long_menu_and_press(telegram_api, telegram_secret, sender, [other, sender])
    finally:
        sender.stop()
        other.stop()
    # the keyboard went out, the other process sent the title, the sender still knew the payload
    assert [m.text for m in agent.received] == ["menu long", LONG_TITLE, LONG_PAYLOAD]
    assert "Could not share a button id" in caplog.text
    assert "Could not look up a button id" in caplog.text


# -- retries of outgoing calls ----------------------------------------------------------------


def test_reply_is_sent_after_server_errors(whatsapp_server: ChannelServer, graph_api: WhatsAppGraphStandIn,
                                           whatsapp_credentials: dict[str, str]) -> None:
    graph_api.fail_next(2, 503)
    notification = text_notification(PHONE_NUMBER_ID, PATIENT_WA_ID, "hello")
    secret = whatsapp_credentials["app_secret"]
    assert WhatsAppGraphStandIn.deliver(whatsapp_server.url("/webhook"), notification, secret).status_code == 200
    sent = graph_api.wait_for_sent(1)
    assert sent[0]["text"]["body"] == "You said: hello"
    assert graph_api.faults_served == 2
    assert len(graph_api.sent) == 1  # sent once, not once per try


def test_reply_is_sent_after_a_dropped_connection(
    telegram_server: ChannelServer, telegram_api: TelegramBotApiStandIn
) -> None:
    telegram_api.clear()
    telegram_api.drop_next(1)
    assert telegram_api.deliver(text_update(5151, "hello")).json()["status"] == "processed"
    sent = telegram_api.wait_for("sendMessage")
    assert sent[0].params["text"] == "You said: hello"
    assert telegram_api.faults_served == 1


def _flood(api: TelegramBotApiStandIn, retry_after: int) -> None:
    """Telegram's 429: the wait is in the JSON body (`parameters.retry_after`), not a header."""
    body = {
        "ok": False,
        "error_code": 429,
        "description": f"Too Many Requests: retry after {retry_after}",
        "parameters": {"retry_after": retry_after},
    }
    api.fail_next(1, 429, body=body)


async def test_telegram_retry_after_is_waited_for_when_short(
    telegram_api: TelegramBotApiStandIn, telegram_token: str
) -> None:
    client = BotApiClient(telegram_token, telegram_api.base_url)
    try:
        _flood(telegram_api, 1)
        started = time.monotonic()
        me = await client.call("getMe")
        assert me["username"] == "clinic_test_bot"
        assert time.monotonic() - started >= 0.9

        _flood(telegram_api, 30)  # longer than the policy waits: surfaced at once
        with pytest.raises(TelegramApiError) as refused:
            await client.call("getMe")
        assert refused.value.error_code == 429 and refused.value.retry_after == 30
        assert telegram_api.faults_served == 2
    finally:
        await client.close()


async def test_graph_gives_up_after_the_attempts_and_the_failure_is_logged(
    graph_api: WhatsAppGraphStandIn, whatsapp_credentials: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    client = GraphClient(whatsapp_credentials["access_token"], PHONE_NUMBER_ID, graph_api.base_url, retry=FAST)
    output = WhatsAppCloudOutput(client, ShortIds(), ButtonMemory())
    try:
        graph_api.fail_next(10, 503)
        with pytest.raises(GraphApiError) as failed:
            await client.send({"messaging_product": "whatsapp", "to": PATIENT_WA_ID, "type": "text",
                               "text": {"body": "hi"}})
        assert failed.value.status == 503
        assert graph_api.faults_served == 3

        with caplog.at_level(logging.ERROR, logger="bot.channels.whatsapp"):
            await output.send_text_message(f"whatsapp:{PATIENT_WA_ID}", "hi")
        assert "WhatsApp send failed: HTTP 503" in caplog.text
        assert graph_api.faults_served == 6 and graph_api.sent == []
    finally:
        await client.close()


async def test_errors_that_are_not_safe_to_repeat_are_not_retried(
    graph_api: WhatsAppGraphStandIn, whatsapp_credentials: dict[str, str]
) -> None:
    client = GraphClient(whatsapp_credentials["access_token"], PHONE_NUMBER_ID, graph_api.base_url, retry=FAST)
    try:
        graph_api.fail_next(1, 501)
        with pytest.raises(GraphApiError):
            await client.send({"messaging_product": "whatsapp", "to": PATIENT_WA_ID, "type": "text",
                               "text": {"body": "hi"}})
        assert graph_api.faults_served == 1
        with pytest.raises(GraphApiError) as refused:  # a 400 is the caller's mistake: once
            await client.send({"messaging_product": "whatsapp", "to": PATIENT_WA_ID, "type": "text",
                               "text": {"body": ""}})
        assert refused.value.status == 400
        assert len(graph_api.calls) == 1
    finally:
        await client.close()


async def test_unreachable_providers_are_reported_after_the_attempts(
    telegram_api: TelegramBotApiStandIn, telegram_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    telegram = BotApiClient(telegram_token, telegram_api.base_url, retry=FAST)
    twilio_api = TwilioApiStandIn("AC" + "2" * 32, "t" * 32)
    twilio_api.start()
    twilio = TwilioWhatsAppOutput(twilio_api.account_sid, "t" * 32, "whatsapp:+14155238886", ButtonMemory(),
                                  twilio_api.base_url, retry=FAST)
    try:
        telegram_api.drop_next(3)
        with pytest.raises(TelegramApiError) as failed:
            await telegram.call("getMe")
        assert "Bot API unreachable" in failed.value.description and failed.value.is_transient
        assert telegram_token not in str(failed.value)

        twilio_api.drop_next(3)
        with caplog.at_level(logging.ERROR, logger="bot.channels.twilio_whatsapp"):
            await twilio.send_text_message("twilio:whatsapp:+447700900123", "hi")
        assert "Twilio send failed: ServerDisconnectedError" in caplog.text
        assert twilio_api.faults_served == 3 and twilio_api.sent == []

        twilio_api.drop_next(2)  # two drops, then Twilio answers
        await twilio.send_text_message("twilio:whatsapp:+447700900123", "hi again")
        assert [m["Body"] for m in twilio_api.sent] == ["hi again"]
    finally:
        await telegram.close()
        await twilio.close()
        twilio_api.stop()

