"""Booking requests: what a patient asked to be booked for, stored once, quotable.

A booking and the outbox rows that tell staff about it are written in one transaction.
Submitting the same form again (same idempotency key) returns the first request. The
reference (``BK-7Q4M2``) is what the patient quotes on the phone. Fields are checked
by the rules in `bot.validation`, the same the booking form applies.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.storage.base import NotFound, Store, iso
from bot.storage.models import BOOKING_STATUSES, BookingRequest, utcnow
from bot.storage.outbox import add_rows, check_channels
from bot.validation import (
    MAX_BODY_PART,
    MAX_CHANNEL,
    MAX_CONVERSATION_ID,
    MAX_DESCRIPTION,
    MAX_IDEMPOTENCY_KEY,
    MAX_NAME,
    MAX_TIMES,
    ValidationError,
    check_aware,
    check_email,
    check_phone,
    check_required,
    check_text,
)

REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
REFERENCE_PREFIX = "BK-"
REFERENCE_LENGTH = 5
REFERENCE_PATTERN = re.compile(
    rf"^{REFERENCE_PREFIX}[{REFERENCE_ALPHABET}]{{{REFERENCE_LENGTH}}}$"
)
_INSERT_TRIES = 5


@dataclass(frozen=True)
class BookingRecord:
    """A stored booking request.

    `created` is True when this call wrote it and False when an earlier submission
    with the same idempotency key was returned instead.
    """

    id: int
    reference: str
    conversation_id: str
    idempotency_key: str
    full_name: str
    phone_e164: str
    email: str | None
    body_part: str
    preferred_times: str
    preferred_times_parsed: str | None
    description: str
    consent_given_at: datetime
    channel: str
    created_at: datetime
    status: str
    created: bool = False


def new_reference() -> str:
    """Return a random booking reference such as ``BK-7Q4M2``.

    The alphabet leaves out 0/O and 1/I so a reference read over the phone is not
    misheard; 32**5 (about 33 million) values make collisions rare, and the store
    retries on the rare one.
    """
    body = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))
    return f"{REFERENCE_PREFIX}{body}"


def booking_record(row: BookingRequest, created: bool = False) -> BookingRecord:
    """The record of a booking row."""
    return BookingRecord(
        id=row.id,
        reference=row.reference,
        conversation_id=row.conversation_id,
        idempotency_key=row.idempotency_key,
        full_name=row.full_name,
        phone_e164=row.phone_e164,
        email=row.email,
        body_part=row.body_part,
        preferred_times=row.preferred_times,
        preferred_times_parsed=row.preferred_times_parsed,
        description=row.description,
        consent_given_at=row.consent_given_at,
        channel=row.channel,
        created_at=row.created_at,
        status=row.status,
        created=created,
    )


def booking_payload(row: BookingRequest) -> dict[str, Any]:
    """Return what staff are told about a booking (stored in the outbox as JSON)."""
    return {
        "booking_id": row.id,
        "reference": row.reference,
        "full_name": row.full_name,
        "phone_e164": row.phone_e164,
        "email": row.email,
        "body_part": row.body_part,
        "preferred_times": row.preferred_times,
        "preferred_times_parsed": row.preferred_times_parsed,
        "description": row.description,
        "channel": row.channel,
        "conversation_id": row.conversation_id,
        "consent_given_at": iso(row.consent_given_at),
        "created_at": iso(row.created_at),
    }


class BookingStore(Store):
    """Creating and finding booking requests."""

    def create_booking_request(
        self,
        *,
        conversation_id: str,
        idempotency_key: str,
        full_name: str,
        phone_e164: str,
        body_part: str,
        preferred_times: str,
        description: str,
        consent_given_at: datetime,
        channel: str,
        email: str | None = None,
        preferred_times_parsed: str | None = None,
        notify_channels: Sequence[str] = (),
    ) -> BookingRecord:
        """Store a booking request and the notifications about it, atomically.

        Submitting again with the same `idempotency_key` returns the first request
        (same reference, `created=False`) and writes nothing.

        Args:
            conversation_id: Rasa sender id.
            idempotency_key: Stable per submission, e.g.
                ``f"{sender_id}:{form_started_at}"``.
            full_name: Patient's name as typed.
            phone_e164: Phone in E.164, e.g. ``+441632960123``.
            body_part: Where it hurts (slot value).
            preferred_times: Preferred appointment times as the patient said them.
            description: The patient's description of the problem.
            consent_given_at: When the patient agreed to be contacted (aware datetime).
            channel: Where the conversation happened (``web``, ``whatsapp``...).
            email: Optional email address.
            preferred_times_parsed: Optional ISO datetime or normalised description.
            notify_channels: Outbox channels to write a row for (``email``,
                ``webhook``); the caller decides (`bot.records` passes those enabled
                in settings). Empty: staff see it in the console only.

        Returns:
            The stored booking.

        Raises:
            ValidationError: A field is missing, too long, malformed or has control
                characters; nothing was stored.
            DatabaseUnavailable: The database could not be reached; nothing was stored.
        """
        values = {
            "conversation_id": check_required(
                "conversation_id", conversation_id, MAX_CONVERSATION_ID
            ),
            "idempotency_key": check_required(
                "idempotency_key", idempotency_key, MAX_IDEMPOTENCY_KEY
            ),
            "full_name": check_required("full_name", full_name, MAX_NAME),
            "phone_e164": check_phone("phone_e164", phone_e164),
            "email": check_email("email", email),
            "body_part": check_required("body_part", body_part, MAX_BODY_PART),
            "preferred_times": check_required(
                "preferred_times", preferred_times, MAX_TIMES, multiline=True
            ),
            "preferred_times_parsed": check_text(
                "preferred_times_parsed",
                preferred_times_parsed,
                MAX_TIMES,
                required=False,
            ),
            "description": check_required(
                "description", description, MAX_DESCRIPTION, multiline=True
            ),
            "consent_given_at": check_aware("consent_given_at", consent_given_at),
            "channel": check_required("channel", channel, MAX_CHANNEL),
        }
        channels = check_channels(notify_channels)
        last_error: IntegrityError | None = None
        for _ in range(_INSERT_TRIES):
            try:
                with self.database.session_scope() as session:
                    existing = session.execute(
                        select(BookingRequest).where(
                            BookingRequest.idempotency_key == values["idempotency_key"]
                        )
                    ).scalar_one_or_none()
                    if existing is not None:
                        return booking_record(existing, created=False)
                    now = utcnow()
                    row = BookingRequest(
                        reference=new_reference(),
                        created_at=now,
                        updated_at=now,
                        status="new",
                        **values,
                    )
                    session.add(row)
                    session.flush()
                    add_rows(session, "booking", row.id, booking_payload(row), channels, now)
                    session.flush()
                    record = booking_record(row, created=True)
                return record
            except IntegrityError as exc:
                # Same key committed concurrently (next loop returns it) or a reference
                # collision (next loop draws another reference).
                last_error = exc
        assert last_error is not None
        raise last_error

    def get_booking(self, reference: str) -> BookingRecord | None:
        """Return the booking with this reference, or None."""
        with self.database.session_scope() as session:
            row = session.execute(
                select(BookingRequest).where(
                    BookingRequest.reference == reference.strip().upper()
                )
            ).scalar_one_or_none()
            return booking_record(row) if row is not None else None

    def set_booking_status(self, reference: str, status: str) -> BookingRecord:
        """Move a booking to `status` (one of `BOOKING_STATUSES`).

        Raises:
            ValidationError: Unknown status.
            NotFound: No booking has this reference.
        """
        if status not in BOOKING_STATUSES:
            raise ValidationError(
                "status", f"must be one of {', '.join(BOOKING_STATUSES)}"
            )
        with self.database.session_scope() as session:
            row = session.execute(
                select(BookingRequest).where(BookingRequest.reference == reference)
            ).scalar_one_or_none()
            if row is None:
                raise NotFound(f"no booking {reference}")
            row.status = status
            row.updated_at = utcnow()
            session.flush()
            return booking_record(row)
