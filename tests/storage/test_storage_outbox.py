"""The outbox keeps each notification until it is sent, retrying with growing pauses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from bot.storage.models import utcnow
from bot.storage.repository import Repository


def _booking_row(
    repo: Repository, booking_fields: Callable[..., dict[str, Any]]
) -> int:
    booking = repo.create_booking_request(**booking_fields(notify_channels=("email",)))
    [row] = repo.notifications_for("booking", booking.id)
    return row.id


def test_failures_back_off_exponentially_then_give_up(
    repo: Repository, booking_fields: Callable[..., dict[str, Any]]
) -> None:
    outbox_id = _booking_row(repo, booking_fields)
    now = utcnow()

    first = repo.mark_failed(outbox_id, "smtp down", now=now)
    assert (first.status, first.attempts) == ("pending", 1)
    assert first.next_attempt_at == now + timedelta(seconds=60)
    assert first.last_error == "smtp down"
    assert repo.pending_notifications(now=now) == []
    assert [r.id for r in repo.pending_notifications(now=first.next_attempt_at)] == [
        outbox_id
    ]

    second = repo.mark_failed(outbox_id, "smtp still down", now=now)
    assert (second.status, second.attempts) == ("pending", 2)
    assert second.next_attempt_at == now + timedelta(seconds=120)

    third = repo.mark_failed(outbox_id, "smtp gone", now=now)  # NOTIFY_MAX_ATTEMPTS=3
    assert (third.status, third.attempts) == ("failed", 3)
    assert repo.pending_notifications(now=now + timedelta(days=1)) == []
    assert repo.outbox_counts() == {"pending": 0, "sent": 0, "failed": 1}

    assert repo.requeue_failed() == 1
    [again] = repo.pending_notifications(now=utcnow() + timedelta(seconds=1))
    assert (again.id, again.status, again.attempts) == (outbox_id, "pending", 0)


def test_mark_sent_records_when(
    repo: Repository, booking_fields: Callable[..., dict[str, Any]]
) -> None:
    outbox_id = _booking_row(repo, booking_fields)
    sent = repo.mark_sent(outbox_id)
    assert sent.status == "sent"
    assert sent.sent_at is not None
    assert repo.pending_notifications() == []
    assert repo.outbox_counts()["sent"] == 1


def test_a_claimed_row_is_not_handed_to_a_second_worker(
    repo: Repository, booking_fields: Callable[..., dict[str, Any]]
) -> None:
    outbox_id = _booking_row(repo, booking_fields)
    now = utcnow()

    first_worker = repo.claim_due_notifications(now=now, lease_seconds=300)
    second_worker = repo.claim_due_notifications(now=now, lease_seconds=300)

    assert [r.id for r in first_worker] == [outbox_id]
    assert second_worker == []
    # If the first worker dies, the row comes back after the lease.
    later = repo.claim_due_notifications(now=now + timedelta(seconds=301))
    assert [r.id for r in later] == [outbox_id]


def test_claim_can_be_limited_to_configured_channels(
    repo: Repository, booking_fields: Callable[..., dict[str, Any]]
) -> None:
    repo.create_booking_request(**booking_fields(notify_channels=("email", "webhook")))
    claimed = repo.claim_due_notifications(channels=["webhook"])
    assert [r.channel for r in claimed] == ["webhook"]
    assert [r.channel for r in repo.pending_notifications()] == ["email"]
