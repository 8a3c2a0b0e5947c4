"""A real socket.io server for the widget tests, mounted the way `rasa run` mounts channels.

It builds the Sanic app with Rasa's own `configure_app` and our `SocketIOInput` (or Rasa's
stock channel, to reproduce rasa#13027), but answers with a tiny scripted responder instead
of a trained model: the widget tests need real sockets, origins and reconnects, not NLU.
Run as a subprocess so a test can kill it and start it again on the same port.

    python tests/web/fake_rasa.py --port 5055 --origin http://127.0.0.1:8080 [--stock]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.socketio import SocketIOInput as StockSocketIOInput
from rasa.core.run import configure_app
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.socketio import SocketIOInput

HTML_MESSAGE = "<script>alert(1)</script><b>x</b><img src=x onerror=alert(2)>"
LINKS_MESSAGE = (
    "Book [online](https://example.org/book) or call [the clinic](tel:+6500000000). "
    "Not a link: [click me](javascript:alert(3)) or data:text/html,hi"
)
MENU = [
    {"title": "Opening hours", "payload": "/ask_hours"},
    {"title": "Book a consultation", "payload": "/book"},
]


@dataclass
class ScriptedAgent:
    """Stands in for `rasa.core.agent.Agent`: records each turn and answers from a script.

    Like Rasa, it keeps each conversation in a (real, in-memory) tracker store, so the
    channel can check that a payload it receives is one of the buttons just offered.
    """

    received: list[dict[str, Any]] = field(default_factory=list)
    tracker_store: InMemoryTrackerStore = field(default_factory=lambda: InMemoryTrackerStore(Domain.empty()))

    async def handle_message(self, message: UserMessage) -> None:
        """Answer, and record the turn in the tracker store as Rasa would."""
        tracker = await self.tracker_store.get_or_create_tracker(message.sender_id)
        tracker.update(UserUttered(message.text))
        out = _RecordingOutput(message.output_channel, tracker)
        await self._answer(message, out)
        await self.tracker_store.save(tracker)

    async def _answer(self, message: UserMessage, out: Any) -> None:
        """Answer like a bot would, through the real output channel of the message."""
        self.received.append(
            {
                "sender_id": message.sender_id,
                "text": message.text,
                "input_channel": message.input_channel,
                "metadata": message.metadata,
            }
        )
        to, text = message.sender_id, (message.text or "")
        lowered = text.lower()
        if text == "/restart":  # like Rasa's action_restart: conversation reset, no reply
            return
        if "slow" in lowered:
            await asyncio.sleep(1.5)
        if text in {"/greet", "hello", "hi"}:
            await out.send_text_with_buttons(
                to, "Hello! I'm the clinic's assistant. How can I help?", MENU
            )
        elif text == "/ask_hours" or "hours" in lowered:
            await out.send_text_message(
                to, "We are open Monday to Friday, 9am to 5pm. Details: https://example.org/hours."
            )
        elif text == "/book":
            await out.send_text_with_buttons(
                to,
                "Happy to help you book. Is this your first visit?",
                [{"title": "Yes, first visit", "payload": "/affirm"},
                 {"title": "No, follow-up", "payload": "/deny"}],
            )
        elif "long" in lowered:
            lines = "\n".join(f"• Point {n}: some general information." for n in range(1, 25))
            await out.send_text_message(to, f"Start of a long answer.\n{lines}")
        elif "links" in lowered:
            await out.send_text_message(to, LINKS_MESSAGE)
        elif "html" in lowered:
            await out.send_text_message(to, HTML_MESSAGE)
        else:
            await out.send_text_message(to, f"You asked: {text}")


class _RecordingOutput:
    """Passes replies to the real output channel and records them as `BotUttered` events."""

    def __init__(self, channel: Any, tracker: Any) -> None:
        self._channel = channel
        self._tracker = tracker

    async def send_text_message(self, to: str, text: str) -> None:
        self._tracker.update(BotUttered(text))
        await self._channel.send_text_message(to, text)

    async def send_text_with_buttons(self, to: str, text: str, buttons: list[dict[str, Any]]) -> None:
        self._tracker.update(BotUttered(text, {"buttons": buttons}))
        await self._channel.send_text_with_buttons(to, text, buttons)


def build_app(origins: list[str], stock: bool = False) -> Sanic:
    """Rasa's app factory with our channel (or Rasa's, to show the defect) and a test route."""
    channel: InputChannel
    if stock:
        channel = StockSocketIOInput(session_persistence=True)
    else:
        channel = SocketIOInput(session_persistence=True, cors_allowed_origins=origins)
    # `--cors <origins>` like bot/run.py: Rasa's sanic-cors must not double socket.io's headers.
    app = configure_app(
        input_channels=[channel], cors=origins, enable_api=False, use_uvloop=False
    )
    agent = ScriptedAgent()
    app.ctx.agent = agent

    @app.get("/test/received")
    async def received(_: Request) -> HTTPResponse:
        return response.json(agent.received)

    return app


def main() -> None:
    """Parse arguments and serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--origin", action="append", default=[])
    parser.add_argument("--stock", action="store_true", help="use Rasa's unfixed channel")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    app = build_app(args.origin, stock=args.stock)
    app.run(host="127.0.0.1", port=args.port, access_log=False, workers=1)


if __name__ == "__main__":
    main()
