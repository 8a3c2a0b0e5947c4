"""Harness for the channel tests: a real Sanic server per connector and an echoing agent.

Each connector is mounted the way `rasa run` mounts it: its blueprint is built by Rasa's own
`rasa.core.channels.channel.register` in the main thread, before any event loop runs, and is
then served by Sanic in another loop (here: a thread), so a connector that binds anything to
the wrong loop fails just as it would in production. `EchoAgent` takes the place of Rasa's
`Agent` behind `app.ctx.agent.handle_message`: it records every `UserMessage` and answers
through the message's real OutputChannel, so replies travel over HTTP to the stand-ins.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

from rasa.core.channels.channel import InputChannel, UserMessage, register
from sanic import Sanic

from bot.channels.telegram import TelegramInput
from bot.channels.whatsapp import WhatsAppCloudInput
from tests.standins._server import free_port
from tests.standins.whatsapp_graph import WhatsAppGraphStandIn

CONDITIONS = [
    ("Sciatica", '/inform{"condition": "sciatica"}'),
    ("Book a consultation", "/book_consultation"),
    ("Knee pain", '/inform{"condition": "knee"}'),
    ("Shoulder pain", '/inform{"condition": "shoulder"}'),
    ("Neck pain", '/inform{"condition": "neck"}'),
    ("Hip pain", '/inform{"condition": "hip"}'),
    ("Lower back pain", '/inform{"condition": "lower_back"}'),
    ("Wrist pain", '/inform{"condition": "wrist"}'),
    ("Ankle pain", '/inform{"condition": "ankle"}'),
    ("Elbow pain", '/inform{"condition": "elbow"}'),
    ("Opening hours", "/ask_opening_hours"),
    ("Talk to our staff", "/request_handoff"),
]
BUTTONS = [{"title": title, "payload": payload} for title, payload in CONDITIONS]
LONG_PAYLOAD = (
    '/inform{"condition": "lumbar radiculopathy", "side": "left", '
    '"duration": "more than six weeks", "radiating": true}'
)
LONG_TITLE = "Pain that spreads down one leg"
HUGE_PAYLOAD = '/inform{"notes": "' + "worse when sitting, better when walking; " * 8 + '"}'
MENUS: dict[str, dict[str, Any]] = {
    "menu 3": {"text": "Where is the pain?", "buttons": BUTTONS[:3]},
    "menu 5": {"text": "Where is the pain?", "buttons": BUTTONS[:5]},
    "menu 12": {"text": "How can we help?", "buttons": BUTTONS},
    "menu long": {
        "text": "Which describes it best?",
        "buttons": [{"title": LONG_TITLE, "payload": LONG_PAYLOAD}, *BUTTONS[:1]],
    },
    "menu huge": {
        "text": "Anything else?",
        "buttons": [
            {"title": "Add these notes", "payload": HUGE_PAYLOAD},
            *BUTTONS[:1],
        ],
    },
}


class EchoAgent:
    """Stands in for Rasa's Agent: records messages, answers through their OutputChannel.

    `menu 3`, `menu 5`, `menu 12`, `menu long` and `menu huge` answer with buttons; anything
    else is
    echoed as `You said: <text>`.
    """

    def __init__(self) -> None:
        """Start with no messages."""
        self._lock = threading.Lock()
        self._received: list[UserMessage] = []

    @property
    def received(self) -> list[UserMessage]:
        """Messages handled so far."""
        with self._lock:
            return list(self._received)

    async def handle_message(self, message: UserMessage) -> None:
        """Record `message` and reply like a bot would."""
        with self._lock:
            self._received.append(message)
        reply = MENUS.get(message.text or "", {"text": f"You said: {message.text}"})
        await message.output_channel.send_response(message.sender_id, dict(reply))


class ChannelServer:
    """A Sanic app serving one input channel on 127.0.0.1, in its own thread and loop."""

    def __init__(self, channel: InputChannel, agent: Any, port: int) -> None:
        """Mount `channel` with Rasa's `register` (blueprint built here, outside any loop)."""
        self.channel = channel
        self.agent = agent
        self.port = port
        # Several apps start in one process; Sanic supports that in test mode (as
        # sanic-testing sets it), otherwise its start-up code rewriting fails the second time.
        Sanic.test_mode = True
        self.app = Sanic(f"channels_{uuid.uuid4().hex[:12]}")
        self.app.ctx.agent = agent
        register([channel], self.app, route="/webhooks/")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def url(self, path: str = "") -> str:
        """URL of a route of the channel, e.g. `url("/webhook")`."""
        return f"http://127.0.0.1:{self.port}/webhooks/{self.channel.name()}{path}"

    def start(self) -> ChannelServer:
        """Serve until `stop`; returns once the port accepts connections."""
        self._thread = threading.Thread(target=self._run, name="sanic", daemon=True)
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError("Sanic did not start")
        if self._error is not None:
            raise RuntimeError("Sanic failed to start") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as error:  # noqa: BLE001 - reported to the starting thread
            self._error = error
            self._ready.set()
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        server = await self.app.create_server(
            host="127.0.0.1",
            port=self.port,
            return_asyncio_server=True,
            access_log=False,
        )
        assert server is not None  # create_server has bound the port already
        await server.startup()
        await server.before_start()
        await server.after_start()
        self._ready.set()
        await self._stopping.wait()
        await server.before_stop()
        server.close()
        for connection in list(server.connections):
            connection.close_if_idle()
        await server.wait_closed()
        await server.after_stop()

    def stop(self) -> None:
        """Run the stop listeners and close the server."""
        if self._loop is not None and self._stopping is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(20)


PHONE_NUMBER_ID = "106540352242922"
PATIENT_WA_ID = "447700900123"


def make_telegram_channel(token: str, secret: str, api_base_url: str, port: int) -> TelegramInput:
    """A Telegram channel built from credentials, as `rasa run` builds it."""
    channel = TelegramInput.from_credentials(
        {
            "access_token": token,
            "verify": "clinic_test_bot",
            "webhook_url": f"http://127.0.0.1:{port}/webhooks/telegram/webhook",
            "secret_token": secret,
            "api_base_url": api_base_url,
            "start_payload": "/greet",
        }
    )
    assert isinstance(channel, TelegramInput)
    channel.retry_initial_seconds = 0.05
    channel.retry_max_seconds = 0.2
    return channel


def serve_whatsapp(
    credentials: dict[str, Any], graph_api: WhatsAppGraphStandIn, agent: EchoAgent
) -> ChannelServer:
    """Start the WhatsApp connector built from `credentials` against the stand-in."""
    channel = WhatsAppCloudInput.from_credentials(
        {**credentials, "api_base_url": graph_api.base_url, "api_version": "v19.0"}
    )
    return ChannelServer(channel, agent, free_port()).start()
