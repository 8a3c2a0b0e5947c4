"""Retention and "forget this patient": delete personal data everywhere it is kept.

Personal data lives in Rasa's `events` table (the conversation itself), our request
tables (bookings, hand-offs, red-flag alerts and their flags, answer feedback), the
outbox's payloads and the status history of those requests, the console's summaries,
notes and NLU corrections, the outage spool files (`bot.spool`, under
BOT_DATA_DIR/spool), and, with several servers, what Redis keeps for them (SPOOL_REDIS_URL):
conversation copies (`bot.shared_spool`) and the records queue (`bot.shared_records`).
`purge` deletes conversations whose last event, and requests created, more than
RETENTION_DAYS ago; `forget` deletes everything of one patient, found by phone number
(their bookings and call-backs name their conversations) or by conversation id. Both
return a `RetentionReport` with a count per place, which the command prints and the
console's admin page shows::

    python -m bot.storage.retention purge --days 365
    python -m bot.storage.retention purge --every 86400   # the retention service: once a day
    python -m bot.storage.retention forget --phone +6591234567
    python -m bot.storage.retention forget --conversation web:abc123
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot import spool
from bot.channels.store import RELEASE_IF_HELD
from bot.settings import Settings, get_settings
from bot.shared_spool import KEY_PREFIX as SHARED_PREFIX
from bot.storage.database import Database, get_database
from bot.storage.models import (
    AnswerFeedback,
    BookingRequest,
    ConversationNote,
    ConversationSummary,
    HandoffRequest,
    NluCorrection,
    NotificationOutbox,
    RedFlagAlert,
    RedFlagAlertFlag,
    StatusChange,
    utcnow,
)
from bot.storage.tracker_events import EVENTS

logger = logging.getLogger(__name__)
CHUNK = 500  # ids per IN (...) clause

PLACES = (
    "events",
    "conversation_summaries",
    "conversation_notes",
    "nlu_corrections",
    "booking_requests",
    "handoff_requests",
    "red_flag_alerts",
    "red_flag_alert_flags",
    "answer_feedback",
    "notification_outbox",
    "status_history",
    "spool_files",
    "spool_records",
    "shared_copies",
)
REDIS_TIMEOUT_SECONDS = 5.0
QUEUE_LOCK_WAIT_SECONDS = 30.0
"""How long to wait for an action server storing the shared records queue to let go of it."""


@dataclass
class RetentionReport:
    """What one purge or forget deleted: rows (or files) per place, and which run it was."""

    action: str
    conversations: int = 0
    deleted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PLACES, 0))
    cutoff: datetime | None = None
    unreached: list[str] = field(default_factory=list)  # places that could not be checked

    @property
    def total(self) -> int:
        """Everything deleted, all places together."""
        return sum(self.deleted.values())

    def lines(self) -> list[str]:
        """The report as a person reads it."""
        head = f"{self.action}: {self.conversations} conversation(s)"
        if self.cutoff is not None:
            head += f" and requests older than {self.cutoff:%Y-%m-%d %H:%M} UTC"
        return [
            head,
            *(f"  {place}: {count}" for place, count in self.deleted.items()),
            *(f"  NOT CHECKED: {place}" for place in self.unreached),
        ]


def _chunks(values: Iterable[object]) -> Iterable[list[object]]:
    items = list(values)
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _has_events_table(session: Session) -> bool:
    return sa.inspect(session.connection()).has_table("events")


def _ids(session: Session, statement: sa.sql.Select) -> set[int]:
    return {int(value) for value in session.execute(statement).scalars()}


def _delete_everything_of(
    session: Session,
    report: RetentionReport,
    conversations: set[str],
    cutoff: datetime | None = None,
) -> None:
    """Delete the conversations' rows, and (with `cutoff`) requests created before it."""
    count = report.deleted
    bookings: set[int] = set()
    handoffs: set[int] = set()
    alerts: set[int] = set()
    for chunk in _chunks(conversations):
        bookings |= _ids(session, sa.select(BookingRequest.id).where(BookingRequest.conversation_id.in_(chunk)))
        handoffs |= _ids(session, sa.select(HandoffRequest.id).where(HandoffRequest.conversation_id.in_(chunk)))
        alerts |= _ids(session, sa.select(RedFlagAlert.id).where(RedFlagAlert.conversation_id.in_(chunk)))
    if cutoff is not None:
        bookings |= _ids(session, sa.select(BookingRequest.id).where(BookingRequest.created_at < cutoff))
        handoffs |= _ids(session, sa.select(HandoffRequest.id).where(HandoffRequest.created_at < cutoff))
        alerts |= _ids(session, sa.select(RedFlagAlert.id).where(RedFlagAlert.created_at < cutoff))

    def delete(place: str, statement: sa.sql.Delete) -> None:
        result = session.execute(statement.execution_options(synchronize_session=False))
        count[place] += int(result.rowcount or 0)

    for kind, ids in (("booking", bookings), ("handoff", handoffs), ("red_flag", alerts)):
        for chunk in _chunks(ids):
            delete("notification_outbox", sa.delete(NotificationOutbox).where(
                NotificationOutbox.kind == kind, NotificationOutbox.ref_id.in_(chunk)))
            if kind != "red_flag":
                delete("status_history", sa.delete(StatusChange).where(
                    StatusChange.kind == kind, StatusChange.ref_id.in_(chunk)))
    for chunk in _chunks(alerts):
        delete("red_flag_alert_flags", sa.delete(RedFlagAlertFlag).where(RedFlagAlertFlag.alert_id.in_(chunk)))
        delete("red_flag_alerts", sa.delete(RedFlagAlert).where(RedFlagAlert.id.in_(chunk)))
    for chunk in _chunks(bookings):
        delete("booking_requests", sa.delete(BookingRequest).where(BookingRequest.id.in_(chunk)))
    for chunk in _chunks(handoffs):
        delete("handoff_requests", sa.delete(HandoffRequest).where(HandoffRequest.id.in_(chunk)))
    by_conversation = (
        ("conversation_summaries", ConversationSummary),
        ("conversation_notes", ConversationNote),
        ("nlu_corrections", NluCorrection),
        ("answer_feedback", AnswerFeedback),
    )
    for chunk in _chunks(conversations):
        for place, model in by_conversation:
            delete(place, sa.delete(model).where(model.conversation_id.in_(chunk)))
        if _has_events_table(session):
            delete("events", sa.delete(EVENTS).where(EVENTS.c.sender_id.in_(chunk)))
    if cutoff is not None:
        for place, model in (("answer_feedback", AnswerFeedback), ("conversation_notes", ConversationNote),
                             ("nlu_corrections", NluCorrection)):
            delete(place, sa.delete(model).where(model.created_at < cutoff))


def _spool_root(settings: Settings) -> Path:
    return settings.data_dir / "spool"


def _record_of(line: bytes, settings: Settings, conversations: set[str], phones: set[str]) -> bool:
    """Whether a spooled record line belongs to these conversations or phone numbers."""
    try:
        kwargs = json.loads(spool.unseal(line, settings)).get("kwargs") or {}
    except (ValueError, AttributeError):
        return False
    return kwargs.get("conversation_id") in conversations or bool(
        {kwargs.get("phone_e164"), kwargs.get("contact_phone")} & phones
    )


def _forget_in_spool(
    report: RetentionReport,
    settings: Settings,
    conversations: set[str],
    phones: set[str],
    cutoff: datetime | None,
) -> None:
    """Delete spooled conversations (files) and spooled records (lines) of these people."""
    root = _spool_root(settings)
    if not root.exists():
        return
    names = {spool.reference(conversation) for conversation in conversations}
    for path in sorted(root.rglob("*.json")):
        old = cutoff is not None and datetime.fromtimestamp(path.stat().st_mtime, cutoff.tzinfo) < cutoff
        if path.stem in names or old:
            path.unlink(missing_ok=True)
            report.deleted["spool_files"] += 1
    for path in sorted(root.rglob("*.jsonl")):
        kept: list[bytes] = []
        dropped = 0
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            if _record_of(line, settings, conversations, phones):
                dropped += 1
            else:
                kept.append(line)  # someone else's, or unreadable: a person checks it (quarantine)
        if dropped:
            if kept:
                spool.write_private(path, b"\n".join(kept) + b"\n")
            else:
                path.unlink()
            report.deleted["spool_records"] += dropped


def _forget_in_shared_spool(
    report: RetentionReport, settings: Settings, conversations: set[str], phones: set[str]
) -> None:
    """Delete what Redis keeps of these people for other servers (any database's).

    Rasa servers' conversation copies (`bot.shared_spool`) and the action servers' records
    queue (`bot.shared_records`), the queue only while holding its lock, as a server storing
    it would: a server removes what it stored by position, so nothing may move under it.
    """
    if not settings.spool_redis_url or not (conversations or phones):
        return
    names = {spool.reference(conversation) for conversation in conversations}
    client = redis.Redis.from_url(
        settings.spool_redis_url, socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )
    try:
        for key in client.scan_iter(match=f"{SHARED_PREFIX}*", count=1000):
            if key.decode("utf-8").rsplit(":", 1)[-1] in names:
                report.deleted["shared_copies"] += int(client.delete(key))
        for queue in client.scan_iter(match=f"{SHARED_PREFIX}records:*:pending"):
            report.deleted["spool_records"] += _forget_in_queue(client, queue, settings, conversations, phones)
    except (redis.RedisError, TimeoutError) as exc:
        logger.warning("could not delete what Redis keeps for other servers (%s)", type(exc).__name__)
        report.unreached.append(
            "copies and records kept in Redis (conversation copies expire within 7 days; "
            "run this again when Redis is back)"
        )
    finally:
        client.close()


def _forget_in_queue(
    client: redis.Redis, queue: bytes, settings: Settings, conversations: set[str], phones: set[str]
) -> int:
    """Remove these people's lines from one records queue, holding its lock; how many."""
    lock = queue[: -len(b"pending")] + b"lock"
    holder = uuid.uuid4().hex
    deadline = time.monotonic() + QUEUE_LOCK_WAIT_SECONDS
    while not client.set(lock, holder, nx=True, px=int(QUEUE_LOCK_WAIT_SECONDS * 1000)):
        if time.monotonic() > deadline:
            raise TimeoutError("an action server kept the records queue's lock")
        time.sleep(0.2)
    try:
        theirs = [line for line in client.lrange(queue, 0, -1) if _record_of(line, settings, conversations, phones)]
        return sum(int(client.lrem(queue, 1, line)) for line in theirs)
    finally:
        client.eval(RELEASE_IF_HELD, 1, lock, holder)


def purge(
    days: int | None = None,
    *,
    database: Database | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> RetentionReport:
    """Delete conversations last active, and requests created, more than `days` ago.

    Args:
        days: Age limit; None means RETENTION_DAYS.
        database: The database (default: the one from settings).
        settings: Settings (default: `get_settings()`).
        now: The current time (tests).

    Returns:
        What was deleted, per place.
    """
    settings = settings or get_settings()
    keep_days = settings.retention_days if days is None else days
    if keep_days < 1:
        raise ValueError("days must be 1 or more")
    cutoff = (now or utcnow()) - timedelta(days=keep_days)
    database = database or get_database()
    report = RetentionReport(action="purge", cutoff=cutoff)
    with database.session_scope() as session:
        conversations = set(
            session.execute(
                sa.select(ConversationSummary.conversation_id).where(ConversationSummary.last_event_at < cutoff)
            ).scalars()
        )
        if _has_events_table(session):
            conversations |= set(
                session.execute(
                    sa.select(EVENTS.c.sender_id)
                    .group_by(EVENTS.c.sender_id)
                    .having(sa.func.max(EVENTS.c.timestamp) < cutoff.timestamp())
                ).scalars()
            )
        report.conversations = len(conversations)
        _delete_everything_of(session, report, conversations, cutoff)
    _forget_in_spool(report, settings, conversations, set(), cutoff)
    _forget_in_shared_spool(report, settings, conversations, set())
    return report


def forget(
    *,
    phone: str | None = None,
    conversation_id: str | None = None,
    database: Database | None = None,
    settings: Settings | None = None,
) -> RetentionReport:
    """Delete everything of one patient: by phone number (E.164) or by conversation id.

    A phone number finds the conversations of every booking and call-back that gave
    it; all of those conversations are deleted, with every request in them.
    """
    if not phone and not conversation_id:
        raise ValueError("give a phone number or a conversation id")
    settings = settings or get_settings()
    database = database or get_database()
    report = RetentionReport(action="forget")
    phones = {phone.replace(" ", "")} if phone else set()
    conversations = {conversation_id} if conversation_id else set()
    with database.session_scope() as session:
        for number in phones:
            conversations |= set(
                session.execute(
                    sa.select(BookingRequest.conversation_id).where(BookingRequest.phone_e164 == number)
                ).scalars()
            )
            conversations |= set(
                session.execute(
                    sa.select(HandoffRequest.conversation_id).where(HandoffRequest.contact_phone == number)
                ).scalars()
            )
        report.conversations = len(conversations)
        _delete_everything_of(session, report, conversations)
    _forget_in_spool(report, settings, conversations, phones, None)
    _forget_in_shared_spool(report, settings, conversations, phones)
    return report


def purge_every(seconds: float, days: int | None = None) -> None:
    """Purge now and then every `seconds`, until interrupted: the retention service.

    A run that fails (the database away, settings wrong) is reported on stderr and tried
    again at the next interval; the service never stops on its own.
    """
    while True:
        try:
            report = purge(days)
        except Exception as exc:  # noqa: BLE001 - reported; the next run tries again
            print(f"retention: purge failed ({type(exc).__name__}: {exc}); next try in {seconds:g} s",
                  file=sys.stderr, flush=True)
        else:
            print("\n".join(report.lines()), flush=True)
        time.sleep(seconds)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: ``purge [--days N] [--every S]`` or ``forget --phone P | --conversation ID``."""
    parser = argparse.ArgumentParser(prog="python -m bot.storage.retention", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    purging = commands.add_parser("purge", help="delete conversations and requests older than N days")
    purging.add_argument("--days", type=int, default=None, help="default: RETENTION_DAYS")
    purging.add_argument("--every", type=float, default=0,
                         help="purge again every S seconds until stopped (the retention service)")
    forgetting = commands.add_parser("forget", help="delete everything of one patient")
    who = forgetting.add_mutually_exclusive_group(required=True)
    who.add_argument("--phone", help="E.164, e.g. +6591234567")
    who.add_argument("--conversation", help="conversation (sender) id")
    args = parser.parse_args(argv)
    if args.command == "purge" and args.every:
        if args.every < 1:
            parser.error("--every must be at least 1 second")
        try:
            purge_every(args.every, args.days)
        except KeyboardInterrupt:
            pass
        return 0
    if args.command == "purge":
        report = purge(args.days)
    else:
        report = forget(phone=args.phone, conversation_id=args.conversation)
    print("\n".join(report.lines()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
