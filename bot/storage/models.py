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
    ForeignKey,
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

# A request's lifecycle in the staff console's queue: new -> contacted -> booked / no_answer
# / closed (a booking or a call-back). A live handoff is also `taken` (staff reply in the
# chat) and `released` (given back to the bot).
BOOKING_STATUSES = ("new", "contacted", "booked", "no_answer", "closed")
HANDOFF_STATUSES = ("open", "taken", "released", "contacted", "booked", "no_answer", "closed")
STAFF_ROLES = ("receptionist", "clinician", "admin")
HISTORY_KINDS = ("booking", "handoff")
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
    assignee_id = Column(Integer, ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True)
    updated_at = Column(UTCDateTime(), nullable=True)
    closed_at = Column(UTCDateTime(), nullable=True)

    __table_args__ = (
        CheckConstraint(_in("status", BOOKING_STATUSES), name="status"),
        Index("ix_booking_requests_status_created_at", "status", "created_at"),
    )


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
    contact_consent_at = Column(UTCDateTime(), nullable=True)
    status = Column(String(20), nullable=False, default="open")
    within_hours = Column(Boolean, nullable=False)
    callback_requested = Column(Boolean, nullable=False, default=False)
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at = Column(UTCDateTime(), nullable=False, default=utcnow)
    taken_by = Column(String(100), nullable=True)
    assignee_id = Column(Integer, ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True)
    closed_at = Column(UTCDateTime(), nullable=True)

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
    acknowledged_by_id = Column(
        Integer, ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True
    )
    outcome = Column(String(500), nullable=True)

    __table_args__ = (
        CheckConstraint(_in("tier", ALERT_TIERS), name="tier"),
        Index("ix_red_flag_alerts_acknowledged_at_created_at", "acknowledged_at", "created_at"),
    )


class RedFlagAlertFlag(Base):
    """One flag of an alert (an alert may name several), for review and per-flag counts."""

    __tablename__ = "red_flag_alert_flags"

    id = Column(Integer, primary_key=True)
    alert_id = Column(
        Integer, ForeignKey("red_flag_alerts.id", ondelete="CASCADE"), nullable=False, index=True
    )
    flag = Column(String(64), nullable=False, index=True)
    tier = Column(String(20), nullable=False)
    category = Column(String(32), nullable=False)

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


class StaffUser(Base):
    """A member of the clinic's staff who signs in to the console.

    `password_hash` is argon2id (argon2-cffi). `failed_logins` and `locked_until` give
    the lockout with backoff; a deactivated user keeps their name in the audit log.
    """

    __tablename__ = "staff_users"

    id = Column(Integer, primary_key=True)
    username = Column(String(64), nullable=False, unique=True)
    display_name = Column(String(100), nullable=False)
    role = Column(String(20), nullable=False)
    password_hash = Column(String(255), nullable=False)
    active = Column(Boolean, nullable=False, default=True)
    failed_logins = Column(Integer, nullable=False, default=0)
    locked_until = Column(UTCDateTime(), nullable=True)
    last_login_at = Column(UTCDateTime(), nullable=True)
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)

    __table_args__ = (CheckConstraint(_in("role", STAFF_ROLES), name="role"),)


class StaffSession(Base):
    """A signed-in browser: the cookie holds a random token, the table only its sha256."""

    __tablename__ = "staff_sessions"

    id = Column(Integer, primary_key=True)
    token_hash = Column(String(64), nullable=False, unique=True)
    user_id = Column(
        Integer, ForeignKey("staff_users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    csrf_token = Column(String(64), nullable=False)
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)
    last_seen_at = Column(UTCDateTime(), nullable=False, default=utcnow)
    expires_at = Column(UTCDateTime(), nullable=False, index=True)


class AuditEntry(Base):
    """Who did what, when: every detail view, export, reply and change in the console."""

    __tablename__ = "audit_log"

    id = Column(Integer, primary_key=True)
    at = Column(UTCDateTime(), nullable=False, default=utcnow, index=True)
    user_id = Column(
        Integer, ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True, index=True
    )
    username = Column(String(64), nullable=False)
    action = Column(String(64), nullable=False, index=True)
    target_kind = Column(String(32), nullable=True)
    target_id = Column(String(255), nullable=True)
    detail = Column(Text, nullable=True)


class ConversationSummary(Base):
    """One row per conversation, kept up to date as its events are stored.

    The console lists and filters these instead of reading every event per page view.
    `events_seen` is how many tracker events were folded in, so an update only reads the
    new ones. `search_text` holds the patient's messages for text search (personal data:
    retention and "forget this patient" delete it with the events).
    """

    __tablename__ = "conversation_summaries"

    conversation_id = Column(String(255), primary_key=True)
    channel = Column(String(32), nullable=False)
    started_at = Column(UTCDateTime(), nullable=False)
    last_event_at = Column(UTCDateTime(), nullable=False)
    last_user_message_at = Column(UTCDateTime(), nullable=True)
    turns = Column(Integer, nullable=False, default=0)
    events_seen = Column(Integer, nullable=False, default=0)
    topics = Column(String(1000), nullable=False, default="")
    red_flag = Column(Boolean, nullable=False, default=False)
    crisis = Column(Boolean, nullable=False, default=False)
    booking = Column(Boolean, nullable=False, default=False)
    handoff = Column(Boolean, nullable=False, default=False)
    not_understood = Column(Boolean, nullable=False, default=False)
    thumbs_down = Column(Boolean, nullable=False, default=False)
    staff_replied = Column(Boolean, nullable=False, default=False)
    taken_over = Column(Boolean, nullable=False, default=False)
    search_text = Column(Text, nullable=False, default="")
    tags = Column(String(500), nullable=False, default="")
    reviewed_at = Column(UTCDateTime(), nullable=True)
    reviewed_by_id = Column(Integer, ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True)

    __table_args__ = (
        Index("ix_conversation_summaries_started_at", "started_at"),
        Index("ix_conversation_summaries_channel_started_at", "channel", "started_at"),
        Index("ix_conversation_summaries_last_event_at", "last_event_at"),
    )


class ConversationNote(Base):
    """A staff member's note on a conversation (clinicians' review notes included)."""

    __tablename__ = "conversation_notes"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    author_id = Column(Integer, ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True)
    author_name = Column(String(100), nullable=False)
    body = Column(Text, nullable=False)
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)


class StatusChange(Base):
    """History of a booking or handoff/call-back: who changed status, assignee or notes."""

    __tablename__ = "status_history"

    id = Column(Integer, primary_key=True)
    kind = Column(String(20), nullable=False)
    ref_id = Column(Integer, nullable=False)
    from_status = Column(String(20), nullable=True)
    to_status = Column(String(20), nullable=False)
    assignee_id = Column(Integer, ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True)
    note = Column(Text, nullable=True)
    by_id = Column(Integer, ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True)
    by_name = Column(String(100), nullable=False)
    at = Column(UTCDateTime(), nullable=False, default=utcnow)

    __table_args__ = (
        CheckConstraint(_in("kind", HISTORY_KINDS), name="kind"),
        Index("ix_status_history_kind_ref_id", "kind", "ref_id"),
    )


class NluCorrection(Base):
    """Staff said the bot got a message wrong: the right intent, or a new topic.

    Exported as Rasa NLU YAML (`bot.console.nlu_export`) to be reviewed and merged into
    data/. `message_timestamp` identifies the user event in the tracker.
    """

    __tablename__ = "nlu_corrections"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    message_timestamp = Column(String(32), nullable=False)
    text = Column(Text, nullable=False)
    predicted_intent = Column(String(100), nullable=True)
    predicted_confidence = Column(String(16), nullable=True)
    corrected_intent = Column(String(100), nullable=True, index=True)
    new_topic = Column(String(200), nullable=True)
    created_by_id = Column(Integer, ForeignKey("staff_users.id", ondelete="SET NULL"), nullable=True)
    created_by_name = Column(String(100), nullable=False)
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)

    __table_args__ = (
        UniqueConstraint(
            "conversation_id", "message_timestamp", name="uq_nlu_corrections_conversation_id"
        ),
    )
