"""The notification outbox: one row per message owed to staff on one channel.

Rows are written in the same transaction as the booking, hand-off or alert they are
about (`add_rows`), so a request is never stored without the news of it, nor the news
without the request. The sender (`bot.notify.outbox`) claims due rows with a lease,
marks them sent or failed, and failed rows back off exponentially until a person
requeues them. Which channels get a row is the caller's choice (`notify_channels`):
storage knows the channel names, not how or whether they are configured.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.settings import Settings
from bot.storage.base import NotFound, Store
from bot.storage.models import OUTBOX_CHANNELS, OUTBOX_STATUSES, NotificationOutbox, utcnow
from bot.validation import MAX_ERROR, ValidationError, clean_excerpt

DEFAULT_LEASE_SECONDS = 300


@dataclass(frozen=True)
class OutboxRecord:
    """One notification owed on one channel; `payload` is already decoded."""

    id: int
    kind: str
    ref_id: int
    channel: str
    payload: dict[str, Any]
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None


def outbox_record(row: NotificationOutbox) -> OutboxRecord:
    """The record of an outbox row."""
    return OutboxRecord(
        id=row.id,
        kind=row.kind,
        ref_id=row.ref_id,
        channel=row.channel,
        payload=json.loads(row.payload),
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


def backoff_delay(attempts: int, settings: Settings) -> timedelta:
    """Return how long to wait before the next try after `attempts` failures.

    Doubles from NOTIFY_BACKOFF_SECONDS and is capped at NOTIFY_BACKOFF_MAX_SECONDS.
    """
    exponent = max(attempts - 1, 0)
    seconds = min(
        settings.notify_backoff_seconds * (2 ** min(exponent, 30)),
        settings.notify_backoff_max_seconds,
    )
    return timedelta(seconds=seconds)


def check_channels(channels: Sequence[str]) -> tuple[str, ...]:
    """Return the distinct channels, order kept, refusing names the outbox does not know.

    Raises:
        ValidationError: A channel other than those in `OUTBOX_CHANNELS`.
    """
    result = tuple(dict.fromkeys(channels))
    for channel in result:
        if channel not in OUTBOX_CHANNELS:
            raise ValidationError("notify_channels", f"unknown channel {channel!r}")
    return result


def add_rows(
    session: Session,
    kind: str,
    ref_id: int,
    payload: dict[str, Any],
    channels: Iterable[str],
    now: datetime,
) -> None:
    """Queue one pending row per channel in the caller's transaction."""
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True)
    for channel in channels:
        session.add(
            NotificationOutbox(
                kind=kind,
                ref_id=ref_id,
                channel=channel,
                payload=text,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )


class OutboxStore(Store):
    """Claiming, sending and retrying what staff are owed."""

    def pending_notifications(
        self, *, now: datetime | None = None, limit: int = 100
    ) -> list[OutboxRecord]:
        """Return due pending notifications, oldest first, without claiming them."""
        now = now or utcnow()
        with self.database.session_scope() as session:
            rows = session.execute(
                select(NotificationOutbox)
                .where(
                    NotificationOutbox.status == "pending",
                    NotificationOutbox.next_attempt_at <= now,
                )
                .order_by(NotificationOutbox.next_attempt_at, NotificationOutbox.id)
                .limit(limit)
            ).scalars()
            return [outbox_record(row) for row in rows]

    def claim_due_notifications(
        self,
        *,
        now: datetime | None = None,
        limit: int = 100,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
        channels: Sequence[str] | None = None,
    ) -> list[OutboxRecord]:
        """Reserve due notifications for this worker so two workers do not both send.

        Each claimed row's `next_attempt_at` moves `lease_seconds` ahead; if this worker
        dies before `mark_sent`/`mark_failed`, the row becomes due again after that.

        Args:
            now: The current time (tests pass a later one to skip ahead).
            limit: At most this many rows.
            lease_seconds: How long the claim holds.
            channels: Only claim rows for these channels (None: all).

        Returns:
            The rows this call claimed.
        """
        now = now or utcnow()
        lease_until = now + timedelta(seconds=lease_seconds)
        claimed: list[OutboxRecord] = []
        for candidate in self.pending_notifications(now=now, limit=limit):
            if channels is not None and candidate.channel not in channels:
                continue
            with self.database.session_scope() as session:
                result = session.execute(
                    update(NotificationOutbox)
                    .where(
                        NotificationOutbox.id == candidate.id,
                        NotificationOutbox.status == "pending",
                        NotificationOutbox.next_attempt_at <= now,
                    )
                    .values(next_attempt_at=lease_until)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:
                    row = session.get(
                        NotificationOutbox, candidate.id, populate_existing=True
                    )
                    if row is not None:
                        claimed.append(outbox_record(row))
        return claimed

    def mark_sent(self, outbox_id: int, *, now: datetime | None = None) -> OutboxRecord:
        """Record a successful delivery.

        Raises:
            NotFound: No such outbox row.
        """
        with self.database.session_scope() as session:
            row = session.get(NotificationOutbox, outbox_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no outbox row {outbox_id}")
            row.status = "sent"
            row.attempts = row.attempts + 1
            row.sent_at = now or utcnow()
            row.last_error = None
            session.flush()
            return outbox_record(row)

    def mark_failed(
        self, outbox_id: int, error: str, *, now: datetime | None = None
    ) -> OutboxRecord:
        """Record a failed delivery and schedule the next try with exponential backoff.

        The row stays ``pending`` (retried when `next_attempt_at` is due) until
        `attempts` reaches NOTIFY_MAX_ATTEMPTS, then becomes ``failed`` and waits for
        `requeue_failed`. It is never deleted.

        Args:
            outbox_id: The outbox row.
            error: What went wrong (kept, shortened, in `last_error`).
            now: The current time.

        Returns:
            The updated row.

        Raises:
            NotFound: No such outbox row.
        """
        now = now or utcnow()
        settings = self.settings
        with self.database.session_scope() as session:
            row = session.get(NotificationOutbox, outbox_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no outbox row {outbox_id}")
            row.attempts = row.attempts + 1
            row.last_error = clean_excerpt(error, MAX_ERROR) or "unknown error"
            if row.attempts >= settings.notify_max_attempts:
                row.status = "failed"
            else:
                row.status = "pending"
            row.next_attempt_at = now + backoff_delay(row.attempts, settings)
            session.flush()
            return outbox_record(row)

    def requeue_failed(self, outbox_id: int | None = None) -> int:
        """Give ``failed`` notifications another round of attempts (after an outage).

        Args:
            outbox_id: One row, or None for every failed row.

        Returns:
            How many rows were requeued.
        """
        statement = (
            update(NotificationOutbox)
            .where(NotificationOutbox.status == "failed")
            .values(status="pending", attempts=0, next_attempt_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if outbox_id is not None:
            statement = statement.where(NotificationOutbox.id == outbox_id)
        with self.database.session_scope() as session:
            return int(session.execute(statement).rowcount or 0)

    def notifications_for(self, kind: str, ref_id: int) -> list[OutboxRecord]:
        """Return every outbox row about one booking, hand-off or alert."""
        with self.database.session_scope() as session:
            rows = session.execute(
                select(NotificationOutbox)
                .where(
                    NotificationOutbox.kind == kind, NotificationOutbox.ref_id == ref_id
                )
                .order_by(NotificationOutbox.id)
            ).scalars()
            return [outbox_record(row) for row in rows]

    def outbox_counts(self) -> dict[str, int]:
        """Return how many outbox rows are pending, sent and failed."""
        counts = dict.fromkeys(OUTBOX_STATUSES, 0)
        with self.database.session_scope() as session:
            for status, count in session.execute(
                select(NotificationOutbox.status, func.count()).group_by(
                    NotificationOutbox.status
                )
            ):
                counts[status] = int(count)
        return counts
