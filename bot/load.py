"""Load test: many patients at once over REST and the widget's socket.io, then count what was stored.

A latency benchmark (`bot.bench_stack`) says how fast answers come; this says whether anything
goes missing when many patients talk at once. For a fixed time, `conversations` patients
(half on the REST webhook, half on socket.io as the widget talks) each send a message, read
the reply, and send the next; every fifth patient books through the form first, with a
phone number of their own. Then, from the tracker store and the bookings table:

- every message got an answer (a reply on REST, a `bot_uttered` on socket.io);
- every message is stored once, in the order it was sent, and the bot messages stored for the
  conversation are as many as the patient received;
- every booking the patient finished is one row, with the reference the patient was shown.

Errors and latency (p50/p95/p99 per channel) are reported, not hidden. `make load` starts the
stack itself (action server + `rasa run`, SQLite or `--postgres`) and writes
`bench/results/load-<date>.json`; `run_load()` drives a stack that is already running.

    python -m bot.load [--conversations 50] [--seconds 120] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import random
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import aiohttp
import socketio
import sqlalchemy as sa

from bot.bench_stack import RESULTS, percentile, start_ours

ORIGIN = "http://127.0.0.1:8080"
CREDENTIALS = f"""\
bot.channels.rest.RestInput:
bot.channels.socketio.SocketIOInput:
  session_persistence: true
  cors_allowed_origins:
    - {ORIGIN}
"""
REPLY_TIMEOUT_SECONDS = 120.0
BOOKING_EVERY = 5  # one patient in five books

if not hasattr(aiohttp, "ClientWSTimeout"):
    # python-engineio 4.15's client passes aiohttp 3.10's ClientWSTimeout(ws_close=...) to
    # ws_connect; Rasa pins aiohttp 3.9, whose ws_connect takes the close timeout as a float.
    aiohttp.ClientWSTimeout = lambda ws_close=10.0, **_: ws_close  # type: ignore[attr-defined]

# (message, text the reply must contain or None)
Script = List[Tuple[str, Optional[str]]]
QUESTIONS: Script = [
    ("hello", None),
    ("what is sciatica", "sciatic nerve"),
    ("my knee hurts when i climb stairs, why?", None),
    ("what about injections?", None),
    ("tell me more", None),
    ("is physiotherapy better than surgery", None),
    ("how can i prevent back pain", None),
    ("what is prp", None),
    ("what exercises help my knee pain", None),
    ("thanks", None),
]
BOOKING: Script = [
    ("can I book a consultation", "Is that OK?"),
    ("/affirm", "full name"),
    ("{name}", "mobile number"),
    ("{phone}", "email"),
    ("skip", "Which area"),
    ("knee", "When would suit you"),
    ("next tuesday after 5pm", "In a sentence or two"),
    ("my left knee hurts going down stairs since March", "Please check your details"),
    ("/affirm", "Your reference is BK-"),
]
NAMES = ["Tan Wei Ming", "Siti Nurhaliza", "Rajesh Kumar", "Lim Mei Ling", "Ahmad Faizal", "Priya Nair"]


@dataclass
class Patient:
    """One conversation of the load: what was sent, what came back, what went wrong."""

    index: int
    channel: str  # "rest" or "socketio"
    books: bool
    sender: str = field(default_factory=lambda: "load" + uuid.uuid4().hex[:12])
    sent: List[str] = field(default_factory=list)
    received: int = 0
    latencies: List[float] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)
    references: List[str] = field(default_factory=list)

    @property
    def conversation_id(self) -> str:
        """How the channel names the conversation in the tracker store (`bot.channels.sender`)."""
        return f"rest:{self.sender}" if self.channel == "rest" else f"web:{self.sender}"

    def script(self) -> Script:
        """The booking first for a booking patient, then questions round and round."""
        phone = f"9{self.index % 10}{random.Random(self.sender).randrange(10**6):06d}"
        booking = [(text.format(name=NAMES[self.index % len(NAMES)], phone=phone), expect)
                   for text, expect in BOOKING]
        return (booking if self.books else []) + QUESTIONS


class RestTalk:
    """A patient on the REST webhook: the reply is the response body."""

    def __init__(self, session: aiohttp.ClientSession, rasa_url: str, patient: Patient) -> None:
        self.session, self.url, self.patient = session, f"{rasa_url}/webhooks/rest/webhook", patient

    async def open(self) -> None:
        """Nothing to open: each message is a POST."""

    async def say(self, text: str) -> List[str]:
        """Send one message; the texts of the replies."""
        async with self.session.post(self.url, json={"sender": self.patient.sender, "message": text}) as answer:
            body = await answer.json(content_type=None)
            if answer.status != 200 or not isinstance(body, list):
                raise RuntimeError(f"HTTP {answer.status}: {str(body)[:200]}")
            return [str(reply.get("text", "")) for reply in body]

    async def close(self) -> None:
        """Nothing to close."""


class SocketTalk:
    """A patient in the widget: socket.io over WebSocket, replies as `bot_uttered` events."""

    def __init__(self, rasa_url: str, patient: Patient) -> None:
        self.url, self.patient = rasa_url, patient
        self.client = socketio.AsyncClient(reconnection=False)
        self.inbox: asyncio.Queue[Dict[str, Any]] = asyncio.Queue()
        self.confirmed: asyncio.Queue[str] = asyncio.Queue()
        self.client.on("bot_uttered", self.inbox.put)
        self.client.on("session_confirm", self.confirmed.put)

    async def open(self) -> None:
        """Connect and open a persistent session named after the patient."""
        await self.client.connect(self.url, headers={"Origin": ORIGIN}, transports=["websocket"], wait_timeout=30)
        await self.client.emit("session_request", {"session_id": self.patient.sender})
        if await asyncio.wait_for(self.confirmed.get(), timeout=30) != self.patient.sender:
            raise RuntimeError("session not confirmed")

    async def say(self, text: str) -> List[str]:
        """Send one message; the replies that arrived by the acknowledgement (at least one)."""
        ack = await self.client.call("user_uttered", {"message": text, "session_id": self.patient.sender,
                                                      "message_id": uuid.uuid4().hex},
                                     timeout=REPLY_TIMEOUT_SECONDS)
        if ack != {"ok": True}:
            raise RuntimeError(f"acknowledged {ack}")
        # replies are emitted before the acknowledgement; the client may hand them over a little later
        replies = [await asyncio.wait_for(self.inbox.get(), timeout=10)]
        while not self.inbox.empty():
            replies.append(self.inbox.get_nowait())
        return [str(reply.get("text", "")) for reply in replies]

    async def close(self) -> None:
        """Collect any straggling replies, then disconnect."""
        await asyncio.sleep(0.5)
        while not self.inbox.empty():
            self.inbox.get_nowait()
            self.patient.received += 1
        await self.client.disconnect()


async def talk(patient: Patient, channel: Any, until: float) -> None:
    """Run the patient's script round and round until `until`; a booking is always finished."""
    await channel.open()
    try:
        script, step = patient.script(), 0
        while True:
            text, expect = script[step % len(script)]
            in_booking = patient.books and step < len(BOOKING)
            if step > 0 and not in_booking and time.monotonic() >= until:
                break
            started = time.perf_counter()
            patient.sent.append(text)
            try:
                replies = await channel.say(text)
            except (aiohttp.ClientError, asyncio.TimeoutError, socketio.exceptions.SocketIOError,
                    RuntimeError, ValueError) as error:
                patient.errors.append(f"{text!r}: {type(error).__name__} {error}")
                if in_booking:
                    return  # the form is off its script; the rest would only add noise
                step += 1
                continue
            patient.latencies.append((time.perf_counter() - started) * 1000)
            patient.received += len(replies)
            joined = "\n".join(replies)
            if not replies:
                patient.errors.append(f"{text!r}: no reply")
            elif expect and expect not in joined:
                patient.errors.append(f"{text!r}: expected {expect!r}, got {joined[:200]!r}")
                if in_booking:
                    return
            patient.references += re.findall(r"Your reference is (BK-\w+)", joined)
            step += 1
            if step >= len(script):
                step = len(BOOKING) if patient.books else 0  # questions again; one booking each
    finally:
        await channel.close()


def first_difference(stored: Sequence[Any], sent: Sequence[Any]) -> int:
    """Index of the first message where the stored conversation and the sent one differ."""
    return next((i for i, (a, b) in enumerate(zip(stored, sent, strict=False)) if a != b), min(len(stored), len(sent)))


def stored_check(database_url: str, patients: Sequence[Patient]) -> Dict[str, Any]:
    """Compare each conversation in the tracker store and bookings table with what the patient saw."""
    problems: List[str] = []
    engine = sa.create_engine(database_url)
    counts = Counter[str]()
    try:
        with engine.connect() as conn:
            for patient in patients:
                rows = conn.execute(sa.text(
                    "SELECT type_name, data FROM events WHERE sender_id = :s ORDER BY id"),
                    {"s": patient.conversation_id}).fetchall()
                users = [json.loads(data).get("text") for kind, data in rows if kind == "user"]
                bots = sum(1 for kind, _ in rows if kind == "bot")
                counts["user"] += len(users)
                counts["bot"] += bots
                counts["events"] += len(rows)
                if users != patient.sent:
                    at = first_difference(users, patient.sent)
                    problems.append(f"{patient.conversation_id}: stored {len(users)} messages, sent "
                                    f"{len(patient.sent)} (first difference at {at})")
                if bots != patient.received:
                    problems.append(f"{patient.conversation_id}: stored {bots} bot messages, the patient received "
                                    f"{patient.received}")
                bookings = conn.execute(sa.text(
                    "SELECT reference FROM booking_requests WHERE conversation_id = :c"),
                    {"c": patient.conversation_id}).scalars().all()
                counts["bookings"] += len(bookings)
                if sorted(bookings) != sorted(patient.references):
                    problems.append(f"{patient.conversation_id}: bookings stored {bookings}, "
                                    f"shown {patient.references}")
    finally:
        engine.dispose()
    return {**counts, "problems": problems}


def channel_figures(patients: Sequence[Patient], seconds: float) -> Dict[str, Any]:
    """Messages, errors, error rate and latency percentiles of a group of patients."""
    samples = [latency for patient in patients for latency in patient.latencies]
    sent = sum(len(patient.sent) for patient in patients)
    errors = sum(len(patient.errors) for patient in patients)
    figures: Dict[str, Any] = {"conversations": len(patients), "messages": sent, "errors": errors,
                               "error_rate": round(errors / sent, 4) if sent else 0.0,
                               "messages_per_second": round(sent / seconds, 1) if seconds else 0.0}
    if samples:
        figures.update(p50_ms=percentile(samples, 0.50), p95_ms=percentile(samples, 0.95),
                       p99_ms=percentile(samples, 0.99))
    return figures


async def drive(rasa_url: str, patients: Sequence[Patient], seconds: float) -> float:
    """All patients at once for `seconds` (bookings finish); the wall time taken."""
    until = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=REPLY_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(patient: Patient) -> None:
            await asyncio.sleep(0.05 * patient.index)  # patients arrive over a couple of seconds
            channel: Any = (RestTalk(session, rasa_url, patient) if patient.channel == "rest"
                            else SocketTalk(rasa_url, patient))
            try:
                await talk(patient, channel, until)
            except (aiohttp.ClientError, asyncio.TimeoutError, socketio.exceptions.SocketIOError,
                    RuntimeError) as error:
                patient.errors.append(f"connection: {type(error).__name__} {error}")

        start = time.perf_counter()
        await asyncio.gather(*(one(patient) for patient in patients))
        return time.perf_counter() - start


def run_load(rasa_url: str, database_url: str, conversations: int = 50, seconds: float = 120.0) -> Dict[str, Any]:
    """Drive a running stack (REST and socket.io both mounted) and check what it stored."""
    patients = [Patient(i, "rest" if i % 2 == 0 else "socketio", books=i % BOOKING_EVERY == 0)
                for i in range(conversations)]
    wall = asyncio.run(drive(rasa_url, patients, seconds))
    return {
        "conversations": conversations, "seconds": round(wall, 1),
        "all": channel_figures(patients, wall),
        "rest": channel_figures([p for p in patients if p.channel == "rest"], wall),
        "socketio": channel_figures([p for p in patients if p.channel == "socketio"], wall),
        "bookings_finished": sum(len(p.references) for p in patients),
        "bookings_started": sum(1 for p in patients if p.books),
        "stored": stored_check(database_url, patients),
        "errors": [f"{p.conversation_id}: {e}" for p in patients for e in p.errors][:50],
    }


def print_report(report: Dict[str, Any]) -> None:
    """The figures as a table, then anything that went missing."""
    print(f"\n{report['conversations']} conversations for {report['seconds']} s")
    print(f"{'channel':<10} {'messages':>9} {'errors':>7} {'msg/s':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for name in ("rest", "socketio", "all"):
        row = report[name]
        print(f"{name:<10} {row['messages']:>9} {row['errors']:>7} {row['messages_per_second']:>6} "
              f"{row.get('p50_ms', '-'):>8} {row.get('p95_ms', '-'):>8} {row.get('p99_ms', '-'):>8}")
    stored = report["stored"]
    print(f"stored: {stored.get('user', 0)} patient messages, {stored.get('bot', 0)} bot messages, "
          f"{stored.get('bookings', 0)} bookings ({report['bookings_finished']} finished of "
          f"{report['bookings_started']} started)")
    for line in stored["problems"] + report["errors"]:
        print("  " + line)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`make load`: start the stack, drive it, check the store, write the JSON; 1 if anything was lost."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--postgres", metavar="URL", help="tracker store in PostgreSQL instead of SQLite")
    parser.add_argument("--model", type=Path, default=Path("models"))
    args = parser.parse_args(argv)
    model = args.model if args.model.is_file() else max(args.model.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    with tempfile.TemporaryDirectory(prefix="clinic-load-") as folder:
        work = Path(folder)
        database_url = args.postgres or f"sqlite:///{work / 'clinic.db'}"
        bot = start_ours(work, model, database_url, credentials=CREDENTIALS)
        try:
            report = run_load(bot.url, database_url, args.conversations, args.seconds)
            report["rss_mb"] = bot.rss()
        finally:
            bot.stop()
    report["date"] = datetime.date.today().isoformat()
    report["store"] = "postgresql" if args.postgres else "sqlite"
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"load-{report['date']}.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_report(report)
    print(f"\nwritten to {out}")
    failed = report["all"]["errors"] or report["stored"]["problems"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
