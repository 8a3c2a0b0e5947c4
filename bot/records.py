"""What the actions store, and what happens when the database is away.

Actions call these coroutines; the blocking SQLAlchemy work runs in a daemon thread with
a time budget (DB_OPERATION_TIMEOUT_SECONDS), so the action server keeps answering even
when the database hangs. When the database is unreachable or silent the record is kept
in a private spool of this database (`bot.spool`: one line per record, 0600, encrypted
with SPOOL_KEY when set) instead of being lost. A timer in the action server stores the
spool every SPOOL_FLUSH_SECONDS until it is empty (started the first time a record is
spooled or found waiting); `python -m bot.run` also stores it at start-up. With
SPOOL_REDIS_URL (else REDIS_URL) set, the action servers share one queue in Redis instead
(`bot.shared_records`), so a record kept by a server that is never started again is stored
by another; their timers then run for as long as they do (one Redis call a round), and the
disk spool is the fallback while Redis is away too. A spooled
red-flag alert is sent to staff at once through the notifiers, not only once stored.
A spooled line that can never be stored is quarantined for a person, so it cannot hold
up the others. Bookings replay idempotently (their idempotency key). After anything
that queues a staff notification, delivery is kicked off in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set

from bot import spool
from bot.settings import get_settings
from bot.shared_records import SharedRecords, shared_records
from bot.storage.bookings import BookingRecord
from bot.storage.database import DatabaseUnavailable, abandon_when, is_data_error
from bot.storage.handoffs import HandoffRecord
from bot.storage.offload import DatabaseStalled, run_blocking
from bot.storage.repository import Repository
from bot.validation import MAX_EXCERPT, ValidationError, clean_excerpt

logger = logging.getLogger(__name__)
_append_lock = threading.Lock()  # held only for a file append or the final merge
_flush_lock = threading.Lock()  # one flush at a time; a second caller does not wait
_background: Set[asyncio.Task[Any]] = set()
_flusher: Optional[asyncio.Task[None]] = None
_wake: Optional[asyncio.Event] = None  # set to start the timer's next round now

SPOOLED = "spooled"
FLUSHING = "flushing.jsonl"


def spool_path() -> Path:
    """Where records wait while this process's database is unreachable."""
    settings = get_settings()
    return spool.spool_dir("records", settings.database_url, settings) / "pending.jsonl"


def quarantine_dir() -> Path:
    """Where spooled records that can never be stored wait for a person."""
    return spool_path().parent / spool.QUARANTINE


def _repo() -> Repository:
    return Repository()


def _operations() -> Dict[str, Callable[..., Any]]:
    """What each record kind calls, with the staff channels enabled in settings now.

    Storage writes an outbox row for the channels it is given; which are switched on is
    decided here, by `bot.notify.config`, also for records replayed from the spool.
    """
    from bot.notify.config import enabled_channels

    repo = _repo()
    channels = enabled_channels(get_settings())
    return {
        "booking": functools.partial(repo.create_booking_request, notify_channels=channels),
        "handoff": functools.partial(repo.create_handoff, notify_channels=channels),
        "red_flag": functools.partial(repo.record_red_flag, notify_channels=channels),
        "feedback": repo.record_feedback,
    }


_TIMES = ("consent_given_at", "contact_consent_at")


def _encode(kwargs: Dict[str, Any]) -> Dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in kwargs.items()}


def _decode(kind: str, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    for key in _TIMES:
        if isinstance(kwargs.get(key), str):
            kwargs[key] = datetime.fromisoformat(kwargs[key])
    return kwargs


def flag_details(flags: Sequence[str]) -> Dict[str, List[str]]:
    """Each known flag's ``[tier, category]`` from the safety data (`data/safety/flags.yml`)."""
    from bot.safety.data import get_safety_data

    known = get_safety_data().flags
    return {f: [known[f].tier, known[f].category] for f in flags if f in known}


def _seal(kind: str, kwargs: Dict[str, Any]) -> bytes:
    return spool.seal(json.dumps({"kind": kind, "kwargs": _encode(kwargs)}))


def _spool(kind: str, kwargs: Dict[str, Any], line: Optional[bytes] = None) -> None:
    """Keep a record in this process's disk spool."""
    path = spool_path()
    with _append_lock:
        spool.append_private(path, (line or _seal(kind, kwargs)) + b"\n")
    logger.error("database unreachable: %s record kept in %s until it is back", kind, path.parent)


def _shared_queue() -> Optional[SharedRecords]:
    settings = get_settings()
    return shared_records(settings.spool_redis_url, settings.database_url)


async def _keep(kind: str, kwargs: Dict[str, Any]) -> None:
    """Keep a record the database could not take: the shared queue, else the disk spool."""
    line = _seal(kind, kwargs)
    shared = _shared_queue()
    if shared is not None and await shared.keep(line):
        logger.error("database unreachable: %s record kept in the shared spool until it is back", kind)
        return
    await asyncio.to_thread(_spool, kind, kwargs, line)


async def records_waiting() -> bool:
    """Whether records wait to be stored: on this server's disk or in the shared queue."""
    if spool_path().exists() or spool_path().with_name(FLUSHING).exists():
        return True
    shared = _shared_queue()
    return shared is not None and await shared.waiting()


def _quarantine_line(line: bytes, reason: str) -> None:
    target = quarantine_dir() / "records.jsonl"
    with _append_lock:
        spool.append_private(target, line + b"\n")
    logger.error(
        "a spooled record was quarantined (%s): it cannot be stored and is kept in %s for a "
        "person to check; the other records are stored",
        reason,
        target.parent,
    )
    from bot.notify.direct import send_now

    payload = {
        "problem": "spooled record quarantined",
        "error": reason,
        "effect": f"a record kept during a database outage cannot be stored; it is in {target.parent}",
    }
    send_now("system", payload, "records-quarantine")


def flush_spool(abandoned: Optional[threading.Event] = None) -> int:
    """Store spooled records now that the database answers; returns how many were saved.

    Each line is stored on its own: the database being away stops the run (the rest is
    kept, in order), a line that can never be stored is quarantined. Records spooled
    meanwhile go to a fresh file and are kept.
    """
    if not _flush_lock.acquire(blocking=False):
        return 0  # another flush is running (or stuck on a silent database)
    try:
        with abandon_when(abandoned or threading.Event()):
            return _flush_locked()
    finally:
        _flush_lock.release()


def _flush_locked() -> int:
    path = spool_path()
    work = path.with_name(FLUSHING)
    with _append_lock:
        if not work.exists():
            if not path.exists():
                return 0
            os.replace(path, work)
    lines = [line for line in work.read_bytes().splitlines() if line.strip()]
    saved, handled = store_lines(lines)
    remaining = lines[handled:]
    with _append_lock:
        if remaining:
            newer = path.read_bytes() if path.exists() else b""
            spool.write_private(path, b"\n".join(remaining) + b"\n" + newer)
        work.unlink()
    if saved:
        logger.warning("saved %d record(s) kept while the database was unreachable", saved)
    return saved


def store_lines(lines: Sequence[bytes]) -> tuple[int, int]:
    """Store spooled lines in order: (how many were saved, how many were dealt with).

    Dealt with means saved or quarantined (a line that can never be stored); the database
    being away stops the run there, so `lines[dealt_with:]` are kept, in order.
    """
    operations = _operations()
    saved = 0
    for index, line in enumerate(lines):
        try:
            item = json.loads(spool.unseal(line))
            kind = item["kind"]
            operations[kind](**_decode(kind, item["kwargs"]))
        except DatabaseUnavailable:
            return saved, index
        except (ValidationError, ValueError, KeyError, TypeError) as exc:
            # ValueError covers JSON errors, undecryptable lines and refused values
            _quarantine_line(line, type(exc).__name__)
            continue
        except Exception as exc:  # noqa: BLE001 - e.g. DataError/IntegrityError
            if not is_data_error(exc):
                logger.error("storing spooled records stopped (%s); they are kept", type(exc).__name__)
                return saved, index
            _quarantine_line(line, type(exc).__name__)
            continue
        saved += 1
    return saved, len(lines)


def _store(kind: str, kwargs: Dict[str, Any], abandoned: threading.Event) -> Any:
    """Store one record; SPOOLED if the database is away (the caller keeps it)."""
    try:
        with abandon_when(abandoned):
            return _operations()[kind](**kwargs)
    except DatabaseUnavailable:
        return SPOOLED


async def _store_async(kind: str, kwargs: Dict[str, Any]) -> Any:
    budget = get_settings().db_operation_timeout_seconds
    try:
        result = await run_blocking(functools.partial(_store, kind, kwargs), budget)
    except DatabaseStalled:  # a late answer commits nothing (abandon_when)
        result = SPOOLED
    if result is SPOOLED:
        await _keep(kind, kwargs)
        if kind == "red_flag":
            _in_background(asyncio.to_thread(alert_spooled_red_flag, kwargs))
        start_flushing()
    else:
        if kind != "feedback":
            notify_in_background()
        if await records_waiting():
            start_flushing(now=True)
    return result


def alert_spooled_red_flag(kwargs: Dict[str, Any]) -> int:
    """Send staff a red-flag alert that could only be spooled; returns channels reached."""
    from bot.notify.direct import send_now

    payload = {
        "alert_id": None,
        "conversation_id": kwargs.get("conversation_id"),
        "flags": list(kwargs.get("flags") or []),
        "tier": kwargs.get("tier"),
        "categories": list(kwargs.get("categories") or []),
        "message_excerpt": clean_excerpt(kwargs.get("message"), MAX_EXCERPT),
        "created_at": datetime.now(timezone.utc).isoformat(),
        "note": "Not stored yet: the database is unreachable. It will be stored (and "
        "notified again) when the database is back.",
    }
    return send_now("red_flag", payload, "spooled-red-flag")


def start_flushing(now: bool = False) -> None:
    """Store the spool every SPOOL_FLUSH_SECONDS in this event loop.

    Until it is empty; with a shared queue, for as long as the loop runs (another server
    may queue records at any time, and may not be there to store them). `now` starts a
    round at once, also when the timer is already waiting.
    """
    global _flusher, _wake
    loop = asyncio.get_running_loop()
    if _flusher is not None and not _flusher.done() and _flusher.get_loop() is loop:
        if now and _wake is not None:
            _wake.set()
        return
    _wake = asyncio.Event()
    _flusher = loop.create_task(_flush_loop(now, _wake))


async def store_on_start(_app: Any, _loop: Any) -> None:
    """Action server start-up (a Sanic listener): store what waits, keep the timer going."""
    start_flushing(now=True)


async def stop_flushing(_app: Any = None, _loop: Any = None) -> None:
    """Stop the timer (action server shutdown, a Sanic listener); what waits stays kept."""
    global _flusher
    task, _flusher = _flusher, None
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _flush_loop(now: bool, wake: asyncio.Event) -> None:
    settings = get_settings()
    wait = 0.0 if now else settings.spool_flush_seconds
    while _shared_queue() is not None or await records_waiting():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(wake.wait(), wait)
        wake.clear()
        wait = settings.spool_flush_seconds
        if not await records_waiting():
            continue
        budget = max(settings.db_operation_timeout_seconds, 30.0)
        saved = 0
        try:
            saved += await run_blocking(flush_spool, budget)
            saved += await _store_shared(budget)
        except DatabaseStalled:
            pass
        except Exception:  # the timer must outlive any surprise; the spool stays where it is
            logger.exception("storing spooled records failed; retrying later")
        if saved:
            notify_in_background()


async def _store_shared(budget: float) -> int:
    """Store the shared queue (if any, and if no other server is at it); how many saved."""
    shared = _shared_queue()
    if shared is None:
        return 0

    def store_held(lines: Sequence[bytes], abandoned: threading.Event) -> tuple[int, int]:
        with abandon_when(abandoned):
            return store_lines(lines)

    saved = await shared.store_waiting(lambda lines: run_blocking(functools.partial(store_held, lines), budget))
    if saved:
        logger.warning("saved %d record(s) kept in the shared spool while the database was unreachable", saved)
    return saved


def _in_background(coroutine: Any) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _background.add(task)
    task.add_done_callback(_background.discard)


def notify_in_background() -> None:
    """Deliver due staff notifications without delaying the patient's reply."""
    from bot.notify.outbox import deliver_pending_async

    async def deliver() -> None:
        try:
            await deliver_pending_async()
        except Exception:  # a notifier problem must never break the conversation
            logger.exception("notification delivery failed; the outbox keeps the rows")

    _in_background(deliver())


async def save_booking(**kwargs: Any) -> BookingRecord | str:
    """Store a booking request (see `Repository.create_booking_request`).

    Returns the stored booking, or `SPOOLED` when it was kept for later.
    Raises `ValidationError` for bad fields (nothing stored).
    """
    return await _store_async("booking", kwargs)


async def save_handoff(**kwargs: Any) -> HandoffRecord | str:
    """Open a hand-off to staff (see `Repository.create_handoff`)."""
    return await _store_async("handoff", kwargs)


async def save_red_flag(
    conversation_id: str,
    flags: List[str],
    message: str,
    tier: str = "emergency",
    categories: Sequence[str] = ("back_knee",),
) -> bool:
    """Store a red-flag alert (with its tier and categories) for staff.

    False only if it could not even be spooled.
    """
    try:
        await _store_async(
            "red_flag",
            {
                "conversation_id": conversation_id,
                "flags": flags,
                "message": message,
                "tier": tier,
                "categories": list(categories),
                "flag_details": flag_details(flags),
            },
        )
        return True
    except (ValidationError, OSError):
        logger.exception("red flag alert for conversation %s not stored", spool.reference(conversation_id)[:12])
        return False


async def save_feedback(
    conversation_id: str, topic: str, helpful: bool, comment: Optional[str] = None
) -> bool:
    """Store a rating of an answer; feedback is never worth bothering the patient about."""
    try:
        await _store_async(
            "feedback",
            {"conversation_id": conversation_id, "topic": topic, "helpful": helpful, "comment": comment},
        )
        return True
    except (ValidationError, OSError):
        logger.exception("feedback for conversation %s not stored", spool.reference(conversation_id)[:12])
        return False
