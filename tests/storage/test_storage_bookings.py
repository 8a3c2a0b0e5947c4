"""Booking requests: saved once, quotable reference, staff notified, input kept safe."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, inspect, select

from bot.storage import bookings as bookings_module
from bot.storage.database import Database
from bot.storage.models import BookingRequest, NotificationOutbox
from bot.storage.repository import (
    REFERENCE_ALPHABET,
    REFERENCE_PATTERN,
    Repository,
    ValidationError,
    new_reference,
)

Fields = Callable[..., dict[str, Any]]


def count(database: Database, model: Any) -> int:
    with database.session_scope() as session:
        return int(
            session.execute(select(func.count()).select_from(model)).scalar_one()
        )


def test_booking_is_stored_with_a_quotable_reference(
    repo: Repository, booking_fields: Fields
) -> None:
    booking = repo.create_booking_request(**booking_fields())

    assert booking.created is True
    assert REFERENCE_PATTERN.match(booking.reference)
    assert booking.status == "new"
    assert booking.created_at.tzinfo is not None
    stored = repo.get_booking(booking.reference)
    assert stored is not None
    assert stored.full_name == "Mary O'Neill"
    assert stored.phone_e164 == "+441632960123"
    assert stored.consent_given_at == booking_fields()["consent_given_at"]
    # Patients read references out over the phone; lower case must still find it.
    assert repo.get_booking(booking.reference.lower()) == stored


def test_submitting_twice_creates_one_request(
    repo: Repository, database: Database, booking_fields: Fields
) -> None:
    fields = booking_fields(idempotency_key="conv-1:form-1", notify_channels=("email",))
    first = repo.create_booking_request(**fields)
    second = repo.create_booking_request(**{**fields, "description": "typed again"})

    assert second.created is False
    assert second.reference == first.reference
    assert second.description == first.description
    assert count(database, BookingRequest) == 1
    assert count(database, NotificationOutbox) == 1


def test_concurrent_double_submit_creates_one_request(
    repo: Repository, database: Database, booking_fields: Fields
) -> None:
    fields = booking_fields(
        idempotency_key="conv-9:double-click", notify_channels=("email",)
    )
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(
            pool.map(lambda _: repo.create_booking_request(**fields), range(6))
        )

    assert len({result.reference for result in results}) == 1
    assert sum(result.created for result in results) == 1
    assert count(database, BookingRequest) == 1
    assert count(database, NotificationOutbox) == 1


def test_references_are_unique_and_unambiguous(
    repo: Repository, booking_fields: Fields
) -> None:
    drawn = {new_reference() for _ in range(3000)}
    assert all(REFERENCE_PATTERN.match(reference) for reference in drawn)
    assert not set("".join(drawn)) & set("01IO")
    assert set(REFERENCE_ALPHABET).isdisjoint("01IO")

    references = [
        repo.create_booking_request(**booking_fields()).reference for _ in range(40)
    ]
    assert len(set(references)) == 40


def test_reference_collision_draws_a_new_reference(
    repo: Repository, booking_fields: Fields, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = repo.create_booking_request(**booking_fields())
    draws = iter([first.reference, "BK-22222"])
    monkeypatch.setattr(bookings_module, "new_reference", lambda: next(draws))

    second = repo.create_booking_request(**booking_fields())

    assert second.reference == "BK-22222"
    assert second.created is True


def test_outbox_rows_are_written_with_the_booking(
    repo: Repository, booking_fields: Fields
) -> None:
    booking = repo.create_booking_request(
        **booking_fields(notify_channels=("email", "webhook"))
    )

    rows = repo.notifications_for("booking", booking.id)
    assert [row.channel for row in rows] == ["email", "webhook"]
    for row in rows:
        assert row.status == "pending"
        assert row.attempts == 0
        assert row.payload["reference"] == booking.reference
        assert row.payload["full_name"] == "Mary O'Neill"
        assert row.payload["description"] == booking.description
    assert [row.id for row in repo.pending_notifications()] == [row.id for row in rows]


def test_outbox_rows_only_for_the_channels_the_caller_names(
    repo: Repository, booking_fields: Fields
) -> None:
    fields = booking_fields()
    del fields["notify_channels"]

    quiet = repo.create_booking_request(**fields)
    assert repo.notifications_for("booking", quiet.id) == []
    assert repo.get_booking(quiet.reference) is not None

    loud = repo.create_booking_request(
        **{**fields, "idempotency_key": "k2", "notify_channels": ("webhook", "email")}
    )
    assert [row.channel for row in repo.notifications_for("booking", loud.id)] == [
        "webhook",
        "email",
    ]


def test_unknown_channel_is_refused_before_saving(
    repo: Repository, database: Database, booking_fields: Fields
) -> None:
    with pytest.raises(ValidationError) as caught:
        repo.create_booking_request(**booking_fields(notify_channels=("sms",)))
    assert caught.value.field == "notify_channels"
    assert count(database, BookingRequest) == 0


SQL_INJECTION = "Robert'); DROP TABLE booking_requests;--"
SCRIPT = "<script>alert('x')</script>"
EMOJI = "Zoë Ødegård 🦵🤕 ☎"


@pytest.mark.parametrize("value", [SQL_INJECTION, SCRIPT, EMOJI, 'O\'Brien "Jr" \\ %_'])
def test_hostile_text_is_stored_verbatim(
    repo: Repository, database: Database, booking_fields: Fields, value: str
) -> None:
    multiline = f"{value}\nsecond line\twith tab"
    booking = repo.create_booking_request(
        **booking_fields(
            full_name=value,
            body_part=value[:100],
            preferred_times=multiline,
            description=multiline,
            conversation_id=value,
        )
    )

    stored = repo.get_booking(booking.reference)
    assert stored is not None
    assert stored.full_name == value
    assert stored.body_part == value[:100]
    assert stored.preferred_times == multiline
    assert stored.description == multiline
    with database.engine.connect() as connection:
        assert "booking_requests" in inspect(connection).get_table_names()
    assert count(database, BookingRequest) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("full_name", "x" * 10_000),
        ("description", "pain " * 2_000),
        ("preferred_times", "y" * 10_000),
        ("full_name", "Ann\x00e"),
        ("description", "knee\x00pain"),
        ("full_name", "Ann\ne"),
        ("body_part", "\x1b[31mknee"),
        ("full_name", "\ud800broken"),
        ("full_name", "   "),
        ("phone_e164", "07700 900123"),
        ("phone_e164", "+44'; DROP TABLE x;--"),
        ("email", "not-an-email"),
        ("email", "a@b.c\r\nBcc: everyone@example.org"),
        ("idempotency_key", "k" * 500),
    ],
)
def test_invalid_or_oversized_input_is_rejected_and_nothing_saved(
    repo: Repository, database: Database, booking_fields: Fields, field: str, value: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        repo.create_booking_request(
            **booking_fields(**{field: value}, notify_channels=("email",))
        )

    assert caught.value.field == field
    assert count(database, BookingRequest) == 0
    assert count(database, NotificationOutbox) == 0


def test_naive_consent_time_is_rejected(
    repo: Repository, booking_fields: Fields
) -> None:
    naive = booking_fields()["consent_given_at"].replace(tzinfo=None)
    with pytest.raises(ValidationError):
        repo.create_booking_request(**booking_fields(consent_given_at=naive))


def test_payload_is_json_with_unicode_kept(
    repo: Repository, database: Database, booking_fields: Fields
) -> None:
    booking = repo.create_booking_request(
        **booking_fields(full_name=EMOJI, notify_channels=("webhook",))
    )
    with database.session_scope() as session:
        raw = session.execute(
            select(NotificationOutbox.payload).where(
                NotificationOutbox.ref_id == booking.id
            )
        ).scalar_one()
    assert json.loads(raw)["full_name"] == EMOJI
