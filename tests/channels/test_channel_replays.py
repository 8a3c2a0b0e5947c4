"""A redelivered or stale webhook is not answered again, even after a restart.

Each test migrates the test database (SQLite under the test's tmp dir), serves a connector,
delivers a message, stops the server, serves a brand-new connector (a restart: nothing in
memory) and delivers the same message again. Rasa 3.6-era connectors kept seen ids in
memory only, so the second delivery was processed as a new message.
"""

from __future__ import annotations

import time
import uuid

import requests
from twilio.request_validator import RequestValidator

from bot.channels.telegram import SECRET_HEADER
from bot.channels.twilio_whatsapp import SIGNATURE_HEADER, TwilioWhatsAppInput
from bot.settings import get_settings
from bot.storage.migrate import upgrade
from tests.channels.all_channels import ACCOUNT_SID
from tests.channels.harness import PHONE_NUMBER_ID, ChannelServer, EchoAgent, make_telegram_channel
from tests.standins._server import free_port
from tests.standins.telegram_api import TelegramBotApiStandIn, text_update
from tests.standins.whatsapp_graph import WhatsAppGraphStandIn, text_notification


def test_telegram_update_is_not_processed_again_after_a_restart(
    telegram_api: TelegramBotApiStandIn, telegram_token: str, telegram_secret: str
) -> None:
    upgrade(get_settings().database_url)
    agent = EchoAgent()
    channel = make_telegram_channel(telegram_token, telegram_secret, telegram_api.base_url, free_port())
    server = ChannelServer(channel, agent, free_port()).start()
    update = text_update(4242, "I need to cancel my appointment")
    headers = {SECRET_HEADER: telegram_secret}
    def status(update: dict[str, object]) -> str:
        return str(requests.post(server.url("/webhook"), json=update, headers=headers, timeout=10).json()["status"])

    assert status(update) == "processed"

    server.stop()
    port = free_port()  # a restarted process: a new channel object, nothing in memory
    server = ChannelServer(make_telegram_channel(telegram_token, telegram_secret, telegram_api.base_url, port), agent,
                           port).start()
    try:
        assert status(update) == "duplicate"
        stale = text_update(4242, "an old message")
        stale["message"]["date"] = int(time.time()) - 25 * 3600
        assert status(stale) == "too_old"
        assert status(text_update(4242, "new")) == "processed"
    finally:
        server.stop()
    assert [m.text for m in agent.received] == ["I need to cancel my appointment", "new"]


def test_whatsapp_message_is_not_processed_again_after_a_restart(
    whatsapp_credentials: dict[str, str], graph_api: WhatsAppGraphStandIn
) -> None:
    from tests.channels.harness import serve_whatsapp

    upgrade(get_settings().database_url)
    agent = EchoAgent()
    secret = whatsapp_credentials["app_secret"]
    notification = text_notification(PHONE_NUMBER_ID, "447700900123", "please book me in")
    server = serve_whatsapp(whatsapp_credentials, graph_api, agent)
    assert WhatsAppGraphStandIn.deliver(server.url("/webhook"), notification, secret).status_code == 200
    server.stop()

    server = serve_whatsapp(whatsapp_credentials, graph_api, agent)
    try:
        assert WhatsAppGraphStandIn.deliver(server.url("/webhook"), notification, secret).status_code == 200
        stale = text_notification(PHONE_NUMBER_ID, "447700900123", "old news")
        stale["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(int(time.time()) - 25 * 3600)
        assert WhatsAppGraphStandIn.deliver(server.url("/webhook"), stale, secret).status_code == 200
    finally:
        server.stop()
    assert [m.text for m in agent.received] == ["please book me in"]


def test_twilio_message_is_not_processed_again_after_a_restart() -> None:
    twilio_token = "t" * 32
    upgrade(get_settings().database_url)
    agent = EchoAgent()
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/twilio_whatsapp/webhook"
    params = {"From": "whatsapp:+447700900123", "Body": "hello", "MessageSid": "SM" + uuid.uuid4().hex,
              "AccountSid": ACCOUNT_SID}
    headers = {SIGNATURE_HEADER: RequestValidator(twilio_token).compute_signature(url, params)}
    for _ in range(2):  # the second time in a restarted server
        channel = TwilioWhatsAppInput(ACCOUNT_SID, twilio_token, "whatsapp:+14155238886", webhook_url=url,
                                      api_base_url="http://127.0.0.1:9")
        server = ChannelServer(channel, agent, port).start()
        try:
            assert requests.post(url, data=params, headers=headers, timeout=10).status_code == 200
        finally:
            server.stop()
    assert [m.text for m in agent.received] == ["hello"]
