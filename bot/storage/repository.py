"""The operations Rasa actions and the staff side need, each one transaction.

Every method opens its own transaction through `Database.session_scope()`, so a
booking and the outbox rows that tell staff about it are written together or not at
all. Methods return frozen dataclasses (`BookingRecord`, ...), never ORM rows: they
can be passed around after the session is closed without lazy-loading surprises.

Patient-typed fields that staff act on (name, phone, email, preferred times,
description) are validated and rejected with `ValidationError` when they are too long
or contain control characters; fields that are only context (a red-flag excerpt, a
feedback comment, a hand-off reason) are cleaned and truncated instead, so recording
them never fails. Text is otherwise stored verbatim: escaping is the job of whatever
renders it.

Usage from an action::

    repo = Repository()  # database URL from settings, connects on first call
    try:
        booking = repo.create_booking_request(conversation_id=tracker.sender_id, ...)
    except ValidationError as exc:
        ...  # exc.field says which slot to ask again
    except DatabaseUnavailable:
        ...  # tell the patient to phone the clinic
"""

from __future__ import annotations

import json
import re
import secrets
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.settings import Settings, get_settings
from bot.storage.database import Database, get_database
from bot.storage.models import (
    ALERT_TIERS,
    BOOKING_STATUSES,
    HANDOFF_STATUSES,
    OUTBOX_CHANNELS,
    OUTBOX_STATUSES,
    AnswerFeedback,
    BookingRequest,
    HandoffRequest,
    NotificationOutbox,
    RedFlagAlert,
    utcnow,
)

REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
REFERENCE_PREFIX = "BK-"
REFERENCE_LENGTH = 5
REFERENCE_PATTERN = re.compile(
    rf"^{REFERENCE_PREFIX}[{REFERENCE_ALPHABET}]{{{REFERENCE_LENGTH}}}$"
)
PHONE_PATTERN = re.compile(r"^\+[1-9][0-9]{6,14}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
FLAG_PATTERN = re.compile(r"^[a-z0-9_]{1,64}$")

MAX_NAME = 200
MAX_EMAIL = 254
MAX_BODY_PART = 100
MAX_PREFERRED_TIMES = 1000
MAX_DESCRIPTION = 4000
MAX_CONVERSATION_ID = 255
MAX_IDEMPOTENCY_KEY = 128
MAX_CHANNEL = 50
MAX_EXCERPT = 500
MAX_FLAGS = 500
MAX_REASON = 500
MAX_TOPIC = 200
MAX_COMMENT = 2000
MAX_STAFF_NAME = 100
MAX_ERROR = 2000

DEFAULT_LEASE_SECONDS = 300
_INSERT_TRIES = 5
_ALLOWED_CONTROL = {"\n", "\r", "\t"}

HANDOFF_TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"taken", "closed"}),
    "taken": frozenset({"taken", "released", "closed", "open"}),
    "released": frozenset({"taken", "closed", "open"}),
    "closed": frozenset(),
}


class ValidationError(ValueError):
    """Input that must not be stored; `field` names the offending argument.

    Args:
        field: The argument (and usually the form slot) that was wrong.
        message: What was wrong, in words an action can adapt for the patient.
    """

    def __init__(self, field: str, message: str):
        """Keep the field name apart so an action can re-ask for that slot."""
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFound(LookupError):
    """The row asked for does not exist."""


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


@dataclass(frozen=True)
class HandoffRecord:
    """A stored hand-off to staff."""

    id: int
    conversation_id: str
    reason: str
    last_topic: str | None
    contact_name: str | None
    contact_phone: str | None
    status: str
    within_hours: bool
    callback_requested: bool
    created_at: datetime
    updated_at: datetime
    taken_by: str | None


@dataclass(frozen=True)
class AlertRecord:
    """A stored red-flag alert; `flags` is the list of matched keys."""

    id: int
    conversation_id: str
    flags: tuple[str, ...]
    message_excerpt: str
    created_at: datetime
    acknowledged_at: datetime | None
    tier: str = "emergency"
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeedbackRecord:
    """A stored answer rating."""

    id: int
    conversation_id: str
    topic: str
    helpful: bool
    comment: str | None
    created_at: datetime


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


def new_reference() -> str:
    """Return a random booking reference such as ``BK-7Q4M2``.

    The alphabet leaves out 0/O and 1/I so a reference read over the phone is not
    misheard; 32**5 (about 33 million) values make collisions rare, and the
    repository retries on the rare one.
    """
    body = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))
    return f"{REFERENCE_PREFIX}{body}"


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


# --- validation -----------------------------------------------------------------


def _encodable(field: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(
            field, "contains characters that are not valid text"
        ) from exc


def _control_chars(value: str, allow: set[str]) -> bool:
    return any(unicodedata.category(ch) == "Cc" and ch not in allow for ch in value)


def _text(
    field: str,
    value: Any,
    max_len: int,
    *,
    multiline: bool = False,
    required: bool = True,
) -> str | None:
    if value is None:
        if required:
            raise ValidationError(field, "is required")
        return None
    if not isinstance(value, str):
        raise ValidationError(field, f"must be text, not {type(value).__name__}")
    text: str = value.strip()
    if not text:
        if required:
            raise ValidationError(field, "is required")
        return None
    if len(text) > max_len:
        raise ValidationError(
            field, f"is too long ({len(text)} characters, at most {max_len})"
        )
    if _control_chars(text, _ALLOWED_CONTROL if multiline else set()):
        raise ValidationError(field, "contains control characters")
    _encodable(field, text)
    return text


def _required(field: str, value: Any, max_len: int, *, multiline: bool = False) -> str:
    result = _text(field, value, max_len, multiline=multiline, required=True)
    assert result is not None
    return result


def _phone(field: str, value: Any, *, required: bool = True) -> str | None:
    text = _text(field, value, 16, required=required)
    if text is not None and not PHONE_PATTERN.match(text):
        raise ValidationError(
            field, "must be in international format, e.g. +441632960123"
        )
    return text


def _email(value: Any) -> str | None:
    text = _text("email", value, MAX_EMAIL, required=False)
    if text is not None and not EMAIL_PATTERN.match(text):
        raise ValidationError("email", "is not an email address")
    return text


def _aware(field: str, value: Any) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(field, "must be a timezone-aware datetime")
    return value


def clean_excerpt(value: str | None, max_len: int) -> str:
    """Make context text safe to store: no control characters, at most `max_len` long.

    Newlines and tabs survive; NUL and other control characters and unpaired
    surrogates are dropped; text over the limit ends in an ellipsis.

    Args:
        value: Text as typed by the patient (or produced by the bot).
        max_len: Maximum length of the result, ellipsis included.

    Returns:
        The cleaned, stripped, possibly truncated text ('' for None).
    """
    if not value:
        return ""
    cleaned = _drop_surrogates(str(value))
    cleaned = "".join(
        ch
        for ch in cleaned
        if unicodedata.category(ch) != "Cc" or ch in _ALLOWED_CONTROL
    ).strip()
    if len(cleaned) > max_len:
        cleaned = cleaned[: max_len - 1].rstrip() + "…"
    return cleaned


def _drop_surrogates(value: str) -> str:
    return value.encode("utf-8", "ignore").decode("utf-8")


def _channels(channels: Sequence[str] | None, settings: Settings) -> tuple[str, ...]:
    if channels is None:
        from bot.notify.config import enabled_channels  # storage must not need notify

        return enabled_channels(settings)
    result = tuple(dict.fromkeys(channels))
    for channel in result:
        if channel not in OUTBOX_CHANNELS:
            raise ValidationError("notify_channels", f"unknown channel {channel!r}")
    return result


# --- row -> record ----------------------------------------------------------------


def _booking(row: BookingRequest, created: bool = False) -> BookingRecord:
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


def _handoff(row: HandoffRequest) -> HandoffRecord:
    return HandoffRecord(
        id=row.id,
        conversation_id=row.conversation_id,
        reason=row.reason,
        last_topic=row.last_topic,
        contact_name=row.contact_name,
        contact_phone=row.contact_phone,
        status=row.status,
        within_hours=row.within_hours,
        callback_requested=row.callback_requested,
        created_at=row.created_at,
        updated_at=row.updated_at,
        taken_by=row.taken_by,
    )


def _alert(row: RedFlagAlert) -> AlertRecord:
    return AlertRecord(
        id=row.id,
        conversation_id=row.conversation_id,
        flags=tuple(flag for flag in row.flags.split(",") if flag),
        message_excerpt=row.message_excerpt,
        created_at=row.created_at,
        acknowledged_at=row.acknowledged_at,
        tier=row.tier,
        categories=tuple(c for c in (row.categories or "").split(",") if c),
    )


def _feedback(row: AnswerFeedback) -> FeedbackRecord:
    return FeedbackRecord(
        id=row.id,
        conversation_id=row.conversation_id,
        topic=row.topic,
        helpful=row.helpful,
        comment=row.comment,
        created_at=row.created_at,
    )


def _outbox(row: NotificationOutbox) -> OutboxRecord:
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


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def booking_payload(row: BookingRequest) -> dict[str, Any]:
    """Return what staff are told about a booking (stored in the outbox as JSON)."""
    return {
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
        "consent_given_at": _iso(row.consent_given_at),
        "created_at": _iso(row.created_at),
    }


def handoff_payload(row: HandoffRequest) -> dict[str, Any]:
    """Return what staff are told about a hand-off."""
    return {
        "handoff_id": row.id,
        "conversation_id": row.conversation_id,
        "reason": row.reason,
        "last_topic": row.last_topic,
        "within_hours": row.within_hours,
        "callback_requested": row.callback_requested,
        "contact_name": row.contact_name,
        "contact_phone": row.contact_phone,
        "created_at": _iso(row.created_at),
    }


def red_flag_payload(row: RedFlagAlert) -> dict[str, Any]:
    """Return what staff are told about a red-flag alert."""
    return {
        "alert_id": row.id,
        "conversation_id": row.conversation_id,
        "flags": [flag for flag in row.flags.split(",") if flag],
        "tier": row.tier,
        "categories": [c for c in (row.categories or "").split(",") if c],
        "message_excerpt": row.message_excerpt,
        "created_at": _iso(row.created_at),
    }


def _add_outbox(
    session: Session,
    kind: str,
    ref_id: int,
    payload: dict[str, Any],
    channels: Iterable[str],
    now: datetime,
) -> None:
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


class Repository:
    """Storage operations for one database.

    Args:
        database: A `Database`, a URL, or None for the shared database from settings.
        schema: PostgreSQL schema (only used when `database` is a URL or None).
        settings: Settings for retry limits and enabled channels; None means
            `get_settings()`, read when first needed.
    """

    def __init__(
        self,
        database: Database | str | None = None,
        *,
        schema: str | None = None,
        settings: Settings | None = None,
    ):
        """Pick the database; nothing connects until the first call."""
        if isinstance(database, Database):
            self.database = database
        else:
            self.database = get_database(database, schema)
        self._settings = settings

    @property
    def settings(self) -> Settings:
        """The settings this repository follows."""
        return self._settings or get_settings()

    # --- bookings ---------------------------------------------------------------

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
        notify_channels: Sequence[str] | None = None,
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
            notify_channels: Outbox channels to notify; None means those enabled in
                settings (see `bot.notify.config.enabled_channels`).

        Returns:
            The stored booking.

        Raises:
            ValidationError: A field is missing, too long, malformed or has control
                characters; nothing was stored.
            DatabaseUnavailable: The database could not be reached; nothing was stored.
        """
        values = {
            "conversation_id": _required(
                "conversation_id", conversation_id, MAX_CONVERSATION_ID
            ),
            "idempotency_key": _required(
                "idempotency_key", idempotency_key, MAX_IDEMPOTENCY_KEY
            ),
            "full_name": _required("full_name", full_name, MAX_NAME),
            "phone_e164": _phone("phone_e164", phone_e164),
            "email": _email(email),
            "body_part": _required("body_part", body_part, MAX_BODY_PART),
            "preferred_times": _required(
                "preferred_times", preferred_times, MAX_PREFERRED_TIMES, multiline=True
            ),
            "preferred_times_parsed": _text(
                "preferred_times_parsed",
                preferred_times_parsed,
                MAX_PREFERRED_TIMES,
                required=False,
            ),
            "description": _required(
                "description", description, MAX_DESCRIPTION, multiline=True
            ),
            "consent_given_at": _aware("consent_given_at", consent_given_at),
            "channel": _required("channel", channel, MAX_CHANNEL),
        }
        channels = _channels(notify_channels, self.settings)
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
                        return _booking(existing, created=False)
                    now = utcnow()
                    row = BookingRequest(
                        reference=new_reference(),
                        created_at=now,
                        status="new",
                        **values,
                    )
                    session.add(row)
                    session.flush()
                    _add_outbox(
                        session, "booking", row.id, booking_payload(row), channels, now
                    )
                    session.flush()
                    record = _booking(row, created=True)
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
            return _booking(row) if row is not None else None

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
            session.flush()
            return _booking(row)

    # --- hand-offs ----------------------------------------------------------------

    def create_handoff(
        self,
        *,
        conversation_id: str,
        reason: str,
        within_hours: bool,
        last_topic: str | None = None,
        callback_requested: bool = False,
        contact_name: str | None = None,
        contact_phone: str | None = None,
        contact_consented: bool = False,
        notify_channels: Sequence[str] | None = None,
    ) -> HandoffRecord:
        """Open a hand-off to staff and queue its notifications, atomically.

        Args:
            conversation_id: Rasa sender id.
            reason: Why the bot handed over (cleaned and truncated, never rejected).
            within_hours: Whether staff were on duty when it was opened.
            last_topic: What the conversation was about, for context.
            callback_requested: The patient asked to be phoned back.
            contact_name: Name for the call back; only with `contact_consented`.
            contact_phone: E.164 phone for the call back; only with `contact_consented`.
            contact_consented: The patient agreed to their contact details being stored.
            notify_channels: As in `create_booking_request`.

        Returns:
            The new hand-off, status ``open``.

        Raises:
            ValidationError: Contact details without consent, a call back without a
                phone number, or a malformed phone number.
            DatabaseUnavailable: The database could not be reached; nothing was stored.
        """
        conversation = _required(
            "conversation_id", conversation_id, MAX_CONVERSATION_ID
        )
        if not contact_consented and (contact_name or contact_phone):
            raise ValidationError(
                "contact_consented", "contact details may only be stored with consent"
            )
        name = _text("contact_name", contact_name, MAX_NAME, required=False)
        phone = _phone("contact_phone", contact_phone, required=False)
        if callback_requested and phone is None:
            raise ValidationError("contact_phone", "a call back needs a phone number")
        channels = _channels(notify_channels, self.settings)
        with self.database.session_scope() as session:
            now = utcnow()
            row = HandoffRequest(
                conversation_id=conversation,
                reason=clean_excerpt(reason, MAX_REASON) or "unspecified",
                last_topic=clean_excerpt(last_topic, MAX_TOPIC) or None,
                contact_name=name,
                contact_phone=phone,
                status="open",
                within_hours=bool(within_hours),
                callback_requested=bool(callback_requested),
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            _add_outbox(session, "handoff", row.id, handoff_payload(row), channels, now)
            session.flush()
            return _handoff(row)

    def set_handoff_status(
        self, handoff_id: int, status: str, *, taken_by: str | None = None
    ) -> HandoffRecord:
        """Move a hand-off along open -> taken -> released/closed.

        ``taken`` needs `taken_by` (re-taking reassigns); ``open`` clears it;
        ``closed`` is final. Setting the current status again (other than ``taken``)
        changes nothing, so a double click is harmless.

        Args:
            handoff_id: The hand-off's id.
            status: One of `HANDOFF_STATUSES`.
            taken_by: Staff member taking it (required for ``taken``).

        Returns:
            The updated hand-off.

        Raises:
            ValidationError: Unknown status, a move that is not allowed, or ``taken``
                without `taken_by`.
            NotFound: No such hand-off.
        """
        if status not in HANDOFF_STATUSES:
            raise ValidationError(
                "status", f"must be one of {', '.join(HANDOFF_STATUSES)}"
            )
        staff = _text("taken_by", taken_by, MAX_STAFF_NAME, required=status == "taken")
        with self.database.session_scope() as session:
            row = session.get(HandoffRequest, handoff_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no hand-off {handoff_id}")
            if row.status == status and status != "taken":
                return _handoff(row)
            if status not in HANDOFF_TRANSITIONS[row.status]:
                raise ValidationError(
                    "status", f"cannot go from {row.status} to {status}"
                )
            row.status = status
            if status == "taken":
                row.taken_by = staff
            elif status == "open":
                row.taken_by = None
            row.updated_at = utcnow()
            session.flush()
            return _handoff(row)

    def open_handoffs(
        self, statuses: Sequence[str] = ("open", "taken")
    ) -> list[HandoffRecord]:
        """Return hand-offs in `statuses` (default: open or taken), oldest first."""
        for status in statuses:
            if status not in HANDOFF_STATUSES:
                raise ValidationError("statuses", f"unknown status {status!r}")
        with self.database.session_scope() as session:
            rows = session.execute(
                select(HandoffRequest)
                .where(HandoffRequest.status.in_(list(statuses)))
                .order_by(HandoffRequest.created_at, HandoffRequest.id)
            ).scalars()
            return [_handoff(row) for row in rows]

    # --- red flags and feedback -----------------------------------------------------

    def record_red_flag(
        self,
        *,
        conversation_id: str,
        flags: Sequence[str],
        message: str,
        tier: str = "emergency",
        categories: Sequence[str] = ("back_knee",),
        notify_channels: Sequence[str] | None = None,
    ) -> AlertRecord:
        """Store a red-flag alert and queue its notifications, atomically.

        Args:
            conversation_id: Rasa sender id.
            flags: Matched red-flag keys (lower-case identifiers, e.g.
                ``cauda_equina``).
            message: The patient's message; stored cleaned and cut to 500 characters.
            tier: ``emergency`` or ``urgent``, the most urgent of the flags.
            categories: Kinds of flag (``back_knee``, ``post_surgery``, ``general``,
                ``crisis``).
            notify_channels: As in `create_booking_request`.

        Returns:
            The stored alert.

        Raises:
            ValidationError: No flags, or a flag that is not a plain key.
            DatabaseUnavailable: The database could not be reached; nothing was stored.
        """
        conversation = _required(
            "conversation_id", conversation_id, MAX_CONVERSATION_ID
        )
        keys = list(dict.fromkeys(flags))
        if not keys or any(not FLAG_PATTERN.match(str(key)) for key in keys):
            raise ValidationError(
                "flags", "must be one or more keys like 'cauda_equina'"
            )
        joined = ",".join(keys)
        if len(joined) > MAX_FLAGS:
            raise ValidationError("flags", "too many flags")
        if tier not in ALERT_TIERS:
            raise ValidationError("tier", f"must be one of {', '.join(ALERT_TIERS)}")
        kinds = list(dict.fromkeys(categories))
        if not kinds or any(not FLAG_PATTERN.match(str(kind)) for kind in kinds):
            raise ValidationError("categories", "must be one or more keys like 'back_knee'")
        channels = _channels(notify_channels, self.settings)
        with self.database.session_scope() as session:
            now = utcnow()
            row = RedFlagAlert(
                conversation_id=conversation,
                flags=joined,
                tier=tier,
                categories=",".join(kinds)[:200],
                message_excerpt=clean_excerpt(message, MAX_EXCERPT),
                created_at=now,
            )
            session.add(row)
            session.flush()
            _add_outbox(
                session, "red_flag", row.id, red_flag_payload(row), channels, now
            )
            session.flush()
            return _alert(row)

    def acknowledge_red_flag(self, alert_id: int) -> AlertRecord:
        """Mark an alert as seen by a clinician (first acknowledgement wins).

        Raises:
            NotFound: No such alert.
        """
        with self.database.session_scope() as session:
            row = session.get(RedFlagAlert, alert_id)
            if row is None:
                raise NotFound(f"no red-flag alert {alert_id}")
            if row.acknowledged_at is None:
                row.acknowledged_at = utcnow()
                session.flush()
            return _alert(row)

    def unacknowledged_red_flags(self) -> list[AlertRecord]:
        """Return alerts no clinician has acknowledged yet, oldest first."""
        with self.database.session_scope() as session:
            rows = session.execute(
                select(RedFlagAlert)
                .where(RedFlagAlert.acknowledged_at.is_(None))
                .order_by(RedFlagAlert.created_at, RedFlagAlert.id)
            ).scalars()
            return [_alert(row) for row in rows]

    def record_feedback(
        self,
        *,
        conversation_id: str,
        topic: str,
        helpful: bool,
        comment: str | None = None,
    ) -> FeedbackRecord:
        """Store a rating of one answer; the comment is cleaned and cut to 2000 chars.

        Raises:
            ValidationError: Missing conversation id or topic.
            DatabaseUnavailable: The database could not be reached.
        """
        conversation = _required(
            "conversation_id", conversation_id, MAX_CONVERSATION_ID
        )
        topic_key = _required("topic", topic, MAX_TOPIC)
        with self.database.session_scope() as session:
            row = AnswerFeedback(
                conversation_id=conversation,
                topic=topic_key,
                helpful=bool(helpful),
                comment=clean_excerpt(comment, MAX_COMMENT) or None,
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            return _feedback(row)

    # --- outbox ---------------------------------------------------------------------

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
            return [_outbox(row) for row in rows]

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
                        claimed.append(_outbox(row))
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
            return _outbox(row)

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
            return _outbox(row)

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
            return [_outbox(row) for row in rows]

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
