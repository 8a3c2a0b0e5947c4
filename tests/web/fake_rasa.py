"""A real socket.io server for the widget tests, mounted the way `rasa run` mounts channels.

It builds the Sanic app with Rasa's own `configure_app` and our `SocketIOInput` (or Rasa's
stock channel, to reproduce rasa#13027), but answers with a tiny scripted responder instead
of a trained model: the widget tests need real sockets, origins and reconnects, not NLU.
Run as a subprocess so a test can kill it and start it again on the same port.

    python tests/web/fake_rasa.py --port 5055 --origin http://127.0.0.1:8080 [--stock]

With FAKE_RASA_STALL set, a message containing "stall" is never answered (a server that
hangs mid-turn until it is killed).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from rasa.core.actions.action import create_bot_utterance
from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.socketio import SocketIOInput as StockSocketIOInput
from rasa.core.run import configure_app
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.socketio import SocketIOInput

HTML_MESSAGE = "<script>alert(1)</script><b>x</b><img src=x onerror=alert(2)>"
LINKS_MESSAGE = (
    "Book [online](https://example.org/book) or call [the clinic](tel:+6500000000). "
    "Not a link: [click me](javascript:alert(3)) or data:text/html,hi"
)
ANSWER_BUBBLES = [
    "Injections can ease pain for a while, so that exercise and physiotherapy are easier.",
    "Steroid injections reduce inflammation. PRP uses your own blood's platelets.",
    "Whether they suit you is decided at a consultation.",
]
FEEDBACK_BUTTONS = [
    {"title": "\U0001f44d Yes", "payload": "/affirm"},
    {"title": "\U0001f44e No", "payload": "/deny"},
]
EMERGENCY_TEL = "995"
ALERT_BUBBLES = [
    "\u26a0\ufe0f This could be an emergency. You mentioned chest pain.",
    "Please call 995 now or go to the nearest A&E.",
    "I've let our clinic staff know. If it's not an emergency, you can also call the clinic.",
]
RESUME_BUTTONS = [{"title": "Continue my booking", "payload": "/book_appointment"}]
CRISIS_BUBBLES = [
    "I'm really sorry you're feeling this way. You don't have to face it alone.",
    "Please call your local emergency number or a crisis helpline now.",
]
STAFF_REPLY = "Hello, this is Sarah at the clinic. I can call you this afternoon."
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
        out = _RecordingOutput(message.output_channel, tracker, message.sender_id)
        await self._answer(message, out)
        await self.tracker_store.save(tracker)

    async def _answer(self, message: UserMessage, out: _RecordingOutput) -> None:
        """Answer like a bot would, through the real output channel of the message."""
        self.received.append(
            {
                "sender_id": message.sender_id,
                "text": message.text,
                "input_channel": message.input_channel,
                "metadata": message.metadata,
            }
        )
        text = message.text or ""
        lowered = text.lower()
        if text == "/restart":  # like Rasa's action_restart: conversation reset, no reply
            return
        if "slow" in lowered:
            await asyncio.sleep(1.5)
        if "stall" in lowered and os.environ.get("FAKE_RASA_STALL"):  # hangs until killed
            await asyncio.sleep(3600)
        if text in {"/greet", "hello", "hi"}:
            await out.say("Hello! I'm the clinic's assistant. How can I help?", MENU)
        elif text == "/ask_hours" or "hours" in lowered:
            await out.say("We are open Monday to Friday, 9am to 5pm. Details: https://example.org/hours.")
        elif text == "/book":
            await out.say(
                "Happy to help you book. Is this your first visit?",
                [{"title": "Yes, first visit", "payload": "/affirm"},
                 {"title": "No, follow-up", "payload": "/deny"}],
            )
        elif "long" in lowered:
            lines = "\n".join(f"• Point {n}: some general information." for n in range(1, 25))
            await out.say(f"Start of a long answer.\n{lines}")
        elif "links" in lowered:
            await out.say(LINKS_MESSAGE)
        elif "html" in lowered:
            await out.say(HTML_MESSAGE)
        elif "injections" in lowered:  # an article answer, as actions/answers.py sends it
            for bubble in ANSWER_BUBBLES:
                await out.say(bubble)
            await out.say("Was this helpful?", FEEDBACK_BUTTONS, clinic={"kind": "feedback"})
        elif text in {"/affirm", "/deny"}:
            await out.say("Thanks for your feedback.")
        elif "call me" in lowered:  # a form's question: Rasa's utter_ask_<slot> response
            await out.say(
                "What's your mobile number? (for example 9123 4567, or with + and the country code)",
                utter_action="utter_ask_phone",
            )
        elif "email me" in lowered:
            await out.say(
                "What's your email address? It's optional.",
                [{"title": "Skip", "payload": "skip"}],
                utter_action="utter_ask_email",
            )
        elif text == "9123 4567":
            await out.say("Thanks. Anything else?")
        elif "confirm my booking" in lowered:  # as actions/booking.py asks for confirmation
            await out.say(
                "Please check your request:\nName: Alice Tan\nMobile: +65 9123 4567",
                [{"title": "\u2705 Confirm", "payload": "/affirm"},
                 {"title": "\u270f\ufe0f Change something", "payload": "change something"},
                 {"title": "Cancel", "payload": "/cancel"}],
            )
        elif "chest pain" in lowered:  # the safety alert, as actions/safety.py sends it
            marker = {"kind": "emergency", "tel": EMERGENCY_TEL}
            for index, bubble in enumerate(ALERT_BUBBLES):
                last = index == len(ALERT_BUBBLES) - 1
                await out.say(bubble, RESUME_BUTTONS if last else None, clinic=marker)
        elif "hopeless" in lowered:
            for bubble in CRISIS_BUBBLES:
                await out.say(bubble, clinic={"kind": "crisis"})
        elif "talk to a person" in lowered:  # staff take over and reply (bot/handoff.py, contract 5)
            await out.say("I've asked our staff to join.")
            await out.say(
                "Sarah from the clinic has joined the conversation.",
                clinic={"kind": "staff_joined", "name": "Sarah"},
            )
            await out.say(STAFF_REPLY, clinic={"kind": "staff", "name": "Sarah"})
        elif "bye staff" in lowered:
            await out.say(
                "Sarah has left the conversation. The assistant is back.",
                clinic={"kind": "staff_left", "name": "Sarah"},
            )
        else:
            await out.say(f"You asked: {text}")


class _RecordingOutput:
    """Sends replies the way Rasa does and records them as `BotUttered` events.

    Like Rasa's processor: the action's message becomes an event with
    `create_bot_utterance` (extra keys such as `clinic` or `utter_action` land in its
    metadata), and `output_channel.send_response(event.message())` sends it.
    """

    def __init__(self, channel: Any, tracker: Any, recipient: str) -> None:
        self._channel = channel
        self._tracker = tracker
        self._to = recipient

    async def say(self, text: str, buttons: list[dict[str, Any]] | None = None, **extra: Any) -> None:
        event = create_bot_utterance({"text": text, "buttons": buttons, **extra})
        self._tracker.update(event)
        await self._channel.send_response(self._to, event.message())


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
