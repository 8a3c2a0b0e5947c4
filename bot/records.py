"""What the actions store, and what happens when the database is away.

Actions call these coroutines; the blocking SQLAlchemy work runs in a worker thread so the
action server keeps answering. When the database is unreachable the record is written to
a local spool file (JSON lines under the data directory) instead of being lost, and the
spool is replayed, in order, as soon as a later call finds the database back. Bookings
replay idempotently (their idempotency key), so a replay never creates a second request.
After anything that queues a staff notification, delivery is kicked off in the background.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set

from bot.settings import get_settings
from bot.storage.database import DatabaseUnavailable
from bot.storage.repository import (
    BookingRecord,
    HandoffRecord,
    Repository,
    ValidationError,
)

logger = logging.getLogger(__name__)
_spool_lock = threading.Lock()
_background: Set[asyncio.Task[Any]] = set()

SPOOLED = "spooled"


def spool_path() -> Path:
    """Where records wait while the database is unreachable."""
    return get_settings().data_dir / "spool" / "pending-records.jsonl"


def _repo() -> Repository:
    return Repository()


def _operations() -> Dict[str, Callable[..., Any]]:
    repo = _repo()
    return {
        "booking": repo.create_booking_request,
        "handoff": repo.create_handoff,
        "red_flag": repo.record_red_flag,
        "feedback": repo.record_feedback,
    }


def _encode(kwargs: Dict[str, Any]) -> Dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in kwargs.items()}


def _decode(kind: str, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    if kind == "booking" and isinstance(kwargs.get("consent_given_at"), str):
        kwargs["consent_given_at"] = datetime.fromisoformat(kwargs["consent_given_at"])
    return kwargs


def _spool(kind: str, kwargs: Dict[str, Any]) -> None:
    path = spool_path()
    with _spool_lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"kind": kind, "kwargs": _encode(kwargs)}) + "\n")
    logger.error("database unreachable: %s record kept in %s until it is back", kind, path)


def flush_spool() -> int:
    """Store spooled records now that the database answers; returns how many were saved."""
    path = spool_path()
    with _spool_lock:
        if not path.exists():
            return 0
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line]
        operations = _operations()
        saved = 0
        remaining: List[str] = []
        for index, line in enumerate(lines):
            item = json.loads(line)
            try:
                operations[item["kind"]](**_decode(item["kind"], item["kwargs"]))
                saved += 1
            except DatabaseUnavailable:
                remaining = lines[index:]
                break
            except ValidationError as exc:
                logger.error("dropping spooled %s record that is invalid: %s", item["kind"], exc)
        if remaining:
            path.write_text("\n".join(remaining) + "\n", encoding="utf-8")
        else:
            path.unlink()
    if saved:
        logger.warning("saved %d record(s) kept while the database was unreachable", saved)
    return saved


def _store(kind: str, kwargs: Dict[str, Any]) -> Any:
    """Store one record (after any spooled ones); spool it if the database is away."""
    try:
        flush_spool()
        return _operations()[kind](**kwargs)
    except DatabaseUnavailable:
        _spool(kind, kwargs)
        return SPOOLED


async def _store_async(kind: str, kwargs: Dict[str, Any]) -> Any:
    result = await asyncio.to_thread(_store, kind, kwargs)
    if result is not SPOOLED and kind != "feedback":
        notify_in_background()
    return result


def notify_in_background() -> None:
    """Deliver due staff notifications without delaying the patient's reply."""
    from bot.notify.outbox import deliver_pending_async

    async def deliver() -> None:
        try:
            await deliver_pending_async()
        except Exception:  # a notifier problem must never break the conversation
            logger.exception("notification delivery failed; the outbox keeps the rows")

    task = asyncio.get_running_loop().create_task(deliver())
    _background.add(task)
    task.add_done_callback(_background.discard)


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
            },
        )
        return True
    except (ValidationError, OSError):
        logger.exception("red flag alert for %s not stored", conversation_id)
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
        logger.exception("feedback for %s not stored", conversation_id)
        return False
