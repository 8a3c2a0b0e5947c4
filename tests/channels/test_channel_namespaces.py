"""Every channel owns its namespace: no channel can read or act in another one's conversation.

All five connectors are mounted in one Sanic app (as `rasa run` mounts them) in front of the
echo agent. From every channel, the test tries to address a patient of every channel (REST
`sender`, a socket.io `session_id`, a Telegram chat id, a WhatsApp `from`, Twilio's `From`,
all properly signed), then checks which conversations were actually touched. Rasa 3.6's
REST channel let `"sender": "whatsapp:<phone>"` continue that patient's booking.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
import socketio
from rasa.core.channels.channel import register

from bot.channels.rest import RestInput
from bot.channels.sender import PREFIXES
from bot.channels.socketio import SocketIOInput
from bot.channels.telegram import SECRET_HEADER, TelegramInput
from bot.channels.twilio_whatsapp import TwilioWhatsAppInput
from bot.channels.whatsapp import WhatsAppCloudInput
from tests.channels.harness import PHONE_NUMBER_ID, ChannelServer, EchoAgent
from tests.standins._server import free_port
from tests.standins.telegram_api import text_update
from tests.standins.twilio_api import TwilioApiStandIn
from tests.standins.whatsapp_graph import WhatsAppGraphStandIn, text_notification

ACCOUNT_SID = "AC" + "2" * 32
VICTIMS = {
    "rest": "victim-1",
    "socketio": "victimsession01",
    "telegram": "4242",
    "whatsapp": "447700900999",
    "twilio_whatsapp": "whatsapp:+447700900999",
}
"""The local id of one patient in each channel; their conversation is `prefix + id`."""


@dataclass
class AllChannels:
    server: ChannelServer
    agent: EchoAgent
    telegram_secret: str
    app_secret: str
    twilio_token: str

    def url(self, channel: str, path: str = "/webhook") -> str:
        return f"http://127.0.0.1:{self.server.port}/webhooks/{channel}{path}"

    def send_as(self, source: str, local_id: str, text: str) -> int | None:
        """Send `text` through `source` claiming to be `local_id`; the HTTP status (None: socket.io)."""
        if source == "rest":
            return requests.post(self.url("rest"), json={"sender": local_id, "message": text}, timeout=10).status_code
        if source == "telegram":
            update = text_update(4242, text)
            update["message"]["chat"]["id"] = local_id
            headers = {SECRET_HEADER: self.telegram_secret}
            return requests.post(self.url("telegram"), json=update, headers=headers, timeout=10).status_code
        if source == "whatsapp":
            notification = text_notification(PHONE_NUMBER_ID, local_id, text)
            return WhatsAppGraphStandIn.deliver(self.url("whatsapp"), notification, self.app_secret).status_code
        if source == "twilio_whatsapp":
            return TwilioApiStandIn.deliver(self.url("twilio_whatsapp"), self.twilio_token, local_id, text).status_code
        asyncio.run(self._socketio_send(local_id, text))
        return None

    async def _socketio_send(self, local_id: str, text: str) -> None:
        client = socketio.AsyncClient(reconnection=False)
        confirmed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        client.on("session_confirm", lambda sid: confirmed.done() or confirmed.set_result(sid))
        await client.connect(f"http://127.0.0.1:{self.server.port}", transports=["polling"],
                             socketio_path="/socket.io", wait_timeout=5)
        try:
            await client.emit("session_request", {"session_id": local_id})
            await asyncio.wait_for(confirmed, 5)
            await client.call("user_uttered", {"message": text, "session_id": local_id}, timeout=5)
        finally:
            # A polite disconnect waits out engine.io's 25 s long-poll; aborting does not.
            await client.eio.disconnect(abort=True)


@pytest.fixture
def channels(agent: EchoAgent) -> Iterator[AllChannels]:
    telegram_secret, app_secret, twilio_token = secrets.token_urlsafe(24), secrets.token_hex(16), secrets.token_hex(16)
    port = free_port()
    graph = WhatsAppGraphStandIn("EAAG" + secrets.token_urlsafe(32), PHONE_NUMBER_ID)
    graph.start()
    twilio = TwilioApiStandIn(ACCOUNT_SID, twilio_token)
    twilio.start()
    server = ChannelServer(RestInput(), agent, port)
    others = [
        SocketIOInput(cors_allowed_origins=["http://127.0.0.1:8080"]),
        TelegramInput(access_token="1:x", secret_token=telegram_secret, api_base_url="http://127.0.0.1:9"),
        WhatsAppCloudInput("EAAG" + "x" * 40, app_secret, secrets.token_hex(16), PHONE_NUMBER_ID,
                           api_base_url=graph.base_url),
        TwilioWhatsAppInput(ACCOUNT_SID, twilio_token, "whatsapp:+14155238886",
                            webhook_url=f"http://127.0.0.1:{port}/webhooks/twilio_whatsapp/webhook",
                            api_base_url=twilio.base_url),
    ]
    register(others, server.app, route="/webhooks/")
    server.start()
    yield AllChannels(server, agent, telegram_secret, app_secret, twilio_token)
    server.stop()
    graph.stop()
    twilio.stop()


@pytest.mark.parametrize("source", list(PREFIXES))
def test_a_channel_reaches_only_its_own_conversations(channels: AllChannels, source: str) -> None:
    """From `source`, address each channel's patient, bare and with that channel's prefix."""
    for target, victim in VICTIMS.items():
        for claimed in (victim, PREFIXES[target] + victim):
            status = channels.send_as(source, claimed, f"from {source} to {target}")
            assert status in {None, 200, 400}, (source, claimed, status)
    received = channels.agent.received
    assert received, "the channel's own patient must still get through"
    for message in received:
        assert message.input_channel == source
        assert message.sender_id.startswith(PREFIXES[source]), message.sender_id
        owner = next(c for c, p in PREFIXES.items() if message.sender_id.startswith(p))
        assert owner == source
    own = {m.sender_id for m in received}
    assert PREFIXES[source] + VICTIMS[source] in own
    others = {PREFIXES[t] + v for t, v in VICTIMS.items() if t != source}
    assert not own & others


@pytest.mark.parametrize(
    ("source", "bad"),
    [("rest", "a\x00b"), ("rest", "x" * 129), ("telegram", "12\x0034"), ("telegram", "a" * 300),
     ("whatsapp", "4477\x00"), ("whatsapp", "447700900123 OR 1=1"), ("twilio_whatsapp", "whatsapp:+44\x007"),
     ("twilio_whatsapp", "sms:+447700900123")],
)
def test_bad_sender_ids_get_a_400_with_a_json_error(channels: AllChannels, source: str, bad: str) -> None:
    assert channels.send_as(source, bad, "hello") == 400
    assert channels.agent.received == []
