"""Tables for what patients ask the clinic for, and for the mail we owe staff about it.

Declarative SQLAlchemy 1.4 models. Allowed status and kind values live here as
constants and as CHECK constraints, so a typo in an action fails loudly instead of
leaving a row no staff view will ever list. Timestamps are stored in UTC and always
come back timezone-aware, on SQLite as on PostgreSQL. The initial Alembic migration
mirrors these definitions; a test checks that they agree.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import declarative_base
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BOOKING_STATUSES = ("new", "contacted", "scheduled", "cancelled")
HANDOFF_STATUSES = ("open", "taken", "released", "closed")
OUTBOX_KINDS = ("booking", "handoff", "red_flag")
ALERT_TIERS = ("emergency", "urgent")
OUTBOX_CHANNELS = ("email", "webhook")
OUTBOX_STATUSES = ("pending", "sent", "failed")

# Same object as timezone.utc; spelled this way because datetime.UTC needs Python 3.11.
UTC = timezone(timedelta(0))

Base: Any = declarative_base(metadata=MetaData(naming_convention=NAMING_CONVENTION))


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime (the one clock tables use)."""
    return datetime.now(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC timestamps on every backend.

    SQLite has no timezone type and hands back naive datetimes; comparing those with
    aware ones raises. This stores UTC and always returns aware UTC values.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Convert an aware datetime to UTC before it is written."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        """Return stored timestamps as aware UTC datetimes."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class BookingRequest(Base):
    """A patient's request for an appointment, which staff confirm by phone.

    `reference` (e.g. ``BK-7Q4M2``) is what the patient quotes when calling; the
    `idempotency_key` makes a re-submitted form return the first request instead of
    creating a second one.
    """

    __tablename__ = "booking_requests"

    id = Column(Integer, primary_key=True)
    reference = Column(String(16), nullable=False, unique=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    idempotency_key = Column(String(128), nullable=False, unique=True)
    full_name = Column(String(200), nullable=False)
    phone_e164 = Column(String(16), nullable=False)
    email = Column(String(254), nullable=True)
    body_part = Column(String(100), nullable=False)
    preferred_times = Column(Text, nullable=False)
    preferred_times_parsed = Column(Text, nullable=True)
    description = Column(Text, nullable=False)
    consent_given_at = Column(UTCDateTime(), nullable=False)
    channel = Column(String(50), nullable=False)
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)
    status = Column(String(20), nullable=False, default="new")

    __table_args__ = (CheckConstraint(_in("status", BOOKING_STATUSES), name="status"),)


class HandoffRequest(Base):
    """A conversation the bot passed to a person, and where that hand-off stands.

    Contact details are stored only when the patient consented to a call back.
    """

    __tablename__ = "handoff_requests"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    reason = Column(String(500), nullable=False)
    last_topic = Column(String(200), nullable=True)
    contact_name = Column(String(200), nullable=True)
    contact_phone = Column(String(16), nullable=True)
    status = Column(String(20), nullable=False, default="open")
    within_hours = Column(Boolean, nullable=False)
    callback_requested = Column(Boolean, nullable=False, default=False)
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at = Column(UTCDateTime(), nullable=False, default=utcnow)
    taken_by = Column(String(100), nullable=True)

    __table_args__ = (
        CheckConstraint(_in("status", HANDOFF_STATUSES), name="status"),
        Index("ix_handoff_requests_status", "status"),
    )


class RedFlagAlert(Base):
    """A message that matched emergency or red-flag symptoms, kept so a clinician can review it.

    `tier` is the most urgent of its flags (`emergency`: now; `urgent`: today) and
    `categories` says which kinds they are (back_knee, post_surgery, general, crisis).
    """

    __tablename__ = "red_flag_alerts"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    flags = Column(String(500), nullable=False)
    tier = Column(String(20), nullable=False, server_default="emergency")
    categories = Column(String(200), nullable=False, server_default="back_knee")
    message_excerpt = Column(String(500), nullable=False)
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)
    acknowledged_at = Column(UTCDateTime(), nullable=True)

    __table_args__ = (CheckConstraint(_in("tier", ALERT_TIERS), name="tier"),)


class AnswerFeedback(Base):
    """A patient's thumbs up or down on one answer, to find answers that need work."""

    __tablename__ = "answer_feedback"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    topic = Column(String(200), nullable=False, index=True)
    helpful = Column(Boolean, nullable=False)
    comment = Column(Text, nullable=True)
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)


class NotificationOutbox(Base):
    """One message owed to staff on one channel, written with the row it is about.

    `pending` rows are sent when `next_attempt_at` is due; a failed attempt keeps the
    row pending with a later `next_attempt_at` until `attempts` reaches the limit, when
    it becomes `failed` and waits for a person (see `Repository.requeue_failed`).
    """

    __tablename__ = "notification_outbox"

    id = Column(Integer, primary_key=True)
    kind = Column(String(20), nullable=False)
    ref_id = Column(Integer, nullable=False)
    channel = Column(String(20), nullable=False)
    payload = Column(Text, nullable=False)
    status = Column(String(20), nullable=False, default="pending")
    attempts = Column(Integer, nullable=False, default=0)
    last_error = Column(Text, nullable=True)
    next_attempt_at = Column(UTCDateTime(), nullable=False, default=utcnow)
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)
    sent_at = Column(UTCDateTime(), nullable=True)

    __table_args__ = (
        CheckConstraint(_in("kind", OUTBOX_KINDS), name="kind"),
        CheckConstraint(_in("channel", OUTBOX_CHANNELS), name="channel"),
        CheckConstraint(_in("status", OUTBOX_STATUSES), name="status"),
        Index("ix_notification_outbox_due", "status", "next_attempt_at"),
    )


class SeenChannelMessage(Base):
    """A platform's message id already handled (Telegram update, WhatsApp or Twilio message).

    Platforms redeliver webhooks they think failed, also after our restart; the unique
    (channel, message_id) pair makes the second delivery lose its insert. Rows older than
    the replay window are pruned (`bot.channels.replay`).
    """

    __tablename__ = "seen_channel_messages"

    id = Column(Integer, primary_key=True)
    channel = Column(String(32), nullable=False)
    message_id = Column(String(128), nullable=False)
    seen_at = Column(UTCDateTime(), nullable=False, default=utcnow)

    __table_args__ = (
        UniqueConstraint("channel", "message_id", name="uq_seen_channel_messages_channel_message_id"),
        Index("ix_seen_channel_messages_seen_at", "seen_at"),
    )
