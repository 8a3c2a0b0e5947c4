"""All five connectors in one Sanic app, as `rasa run` mounts them, and a way to talk to each.

`AllChannels.send_as(channel, local_id, text)` sends a properly authenticated message through
any channel (REST body, socket.io events, Telegram secret header, Meta's and Twilio's
signatures) claiming to come from `local_id`. Telegram replies go to a closed port; the
WhatsApp Graph and Twilio stand-ins record theirs.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
import socketio
from rasa.core.channels.channel import register

from bot.channels.rest import RestInput
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
    """The running app and the secrets each platform signs with."""

    server: ChannelServer
    agent: EchoAgent
    telegram_secret: str
    app_secret: str
    twilio_token: str
    graph: WhatsAppGraphStandIn
    twilio: TwilioApiStandIn
    socket_replies: list[dict[str, Any]] = field(default_factory=list)

    def url(self, channel: str, path: str = "/webhook") -> str:
        """URL of a channel's route."""
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
        client.on("bot_uttered", lambda data: self.socket_replies.append(data))
        await client.connect(f"http://127.0.0.1:{self.server.port}", transports=["polling"],
                             socketio_path="/socket.io", wait_timeout=5)
        try:
            await client.emit("session_request", {"session_id": local_id})
            await asyncio.wait_for(confirmed, 5)
            await client.call("user_uttered", {"message": text, "session_id": local_id}, timeout=5)
        finally:
            # A polite disconnect waits out engine.io's 25 s long-poll; aborting does not.
            await client.eio.disconnect(abort=True)


def serve_all_channels(agent: EchoAgent) -> Iterator[AllChannels]:
    """REST, socket.io, Telegram, WhatsApp Cloud and Twilio in one app before the echo agent."""
    telegram_secret, app_secret, twilio_token = secrets.token_urlsafe(24), secrets.token_hex(16), secrets.token_hex(16)
    port = free_port()
    graph_token = "EAAG" + secrets.token_urlsafe(32)
    graph = WhatsAppGraphStandIn(graph_token, PHONE_NUMBER_ID)
    graph.start()
    twilio = TwilioApiStandIn(ACCOUNT_SID, twilio_token)
    twilio.start()
    server = ChannelServer(RestInput(), agent, port)
    others = [
        SocketIOInput(cors_allowed_origins=["http://127.0.0.1:8080"]),
        TelegramInput(access_token="1:x", secret_token=telegram_secret, api_base_url="http://127.0.0.1:9"),
        WhatsAppCloudInput(graph_token, app_secret, secrets.token_hex(16), PHONE_NUMBER_ID,
                           api_base_url=graph.base_url),
        TwilioWhatsAppInput(ACCOUNT_SID, twilio_token, "whatsapp:+14155238886",
                            webhook_url=f"http://127.0.0.1:{port}/webhooks/twilio_whatsapp/webhook",
                            api_base_url=twilio.base_url),
    ]
    register(others, server.app, route="/webhooks/")
    server.start()
    yield AllChannels(server, agent, telegram_secret, app_secret, twilio_token, graph, twilio)
    server.stop()
    graph.stop()
    twilio.stop()
