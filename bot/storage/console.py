"""Queries behind the staff console: accounts, sessions, audit log, conversations, queue.

The console (`bot.console`) never writes SQL itself; every page reads and writes through
these functions, which take a `Database` so tests and benchmarks point them at their own.
Rows come back as detached ORM objects (sessions use ``expire_on_commit=False``), read-only
for the caller. Conversations are listed from `conversation_summaries` (kept up to date as
events are stored, by `bot.storage.summaries`); a transcript reads Rasa's own tracker
store table `events` in the same database.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, func, select

from bot.storage.database import Database
from bot.storage.models import (
    BOOKING_STATUSES,
    HANDOFF_STATUSES,
    AnswerFeedback,
    AuditEntry,
    BookingRequest,
    ConversationNote,
    ConversationSummary,
    HandoffRequest,
    NluCorrection,
    RedFlagAlert,
    RedFlagAlertFlag,
    StaffSession,
    StaffUser,
    StatusChange,
    utcnow,
)

# Rasa's SQLTrackerStore table (rasa.core.tracker_store.SQLTrackerStore.SQLEvent), read only.
EVENTS = Table(
    "events",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255), nullable=False),
    Column("type_name", String(255), nullable=False),
    Column("timestamp", Float),
    Column("intent_name", String(255)),
    Column("action_name", String(255)),
    Column("data", Text),
)

# Summary flags a conversation can be filtered by, with the label staff see.
FLAGS = {
    "red_flag": "Red flag",
    "crisis": "Crisis",
    "booking": "Booking",
    "handoff": "Handoff",
    "not_understood": "Not understood",
    "thumbs_down": "Thumbs down",
    "staff_replied": "Staff replied",
}
OPEN_BOOKING_STATUSES = ("new", "contacted", "no_answer")
OPEN_HANDOFF_STATUSES = ("open", "taken", "released", "contacted", "no_answer")


class NotFound(LookupError):
    """The row the page asked for does not exist."""


# --- staff accounts -------------------------------------------------------------------


def create_user(db: Database, *, username: str, display_name: str, role: str,
                password_hash: str) -> StaffUser:
    """Add a staff account (the username is stored lower-case)."""
    with db.session_scope() as session:
        user = StaffUser(username=username.strip().lower(), display_name=display_name.strip(),
                         role=role, password_hash=password_hash, active=True)
        session.add(user)
        session.flush()
        return user


def user_by_username(db: Database, username: str) -> StaffUser | None:
    """The account with this username, active or not."""
    with db.session_scope() as session:
        return session.scalars(
            select(StaffUser).where(StaffUser.username == username.strip().lower())
        ).first()


def get_user(db: Database, user_id: int) -> StaffUser:
    """One account by id."""
    with db.session_scope() as session:
        user = session.get(StaffUser, user_id)
        if user is None:
            raise NotFound(f"staff user {user_id}")
        return user


def list_users(db: Database) -> list[StaffUser]:
    """Every account, active first, by name."""
    with db.session_scope() as session:
        return list(session.scalars(
            select(StaffUser).order_by(StaffUser.active.desc(), StaffUser.display_name)
        ))


def set_user_active(db: Database, user_id: int, active: bool) -> None:
    """Activate or deactivate an account; deactivation ends its sessions."""
    with db.session_scope() as session:
        user = session.get(StaffUser, user_id)
        if user is None:
            raise NotFound(f"staff user {user_id}")
        user.active = active
        if not active:
            session.query(StaffSession).filter(StaffSession.user_id == user_id).delete()


def set_password_hash(db: Database, user_id: int, password_hash: str) -> None:
    """Replace a password; every session of the account ends and the lockout is lifted."""
    with db.session_scope() as session:
        user = session.get(StaffUser, user_id)
        if user is None:
            raise NotFound(f"staff user {user_id}")
        user.password_hash = password_hash
        user.failed_logins = 0
        user.locked_until = None
        session.query(StaffSession).filter(StaffSession.user_id == user_id).delete()


def record_login_failure(db: Database, user_id: int, locked_until: datetime | None) -> int:
    """Count a failed login; returns the number of failures in a row."""
    with db.session_scope() as session:
        user = session.get(StaffUser, user_id)
        if user is None:
            raise NotFound(f"staff user {user_id}")
        user.failed_logins = (user.failed_logins or 0) + 1
        if locked_until is not None:
            user.locked_until = locked_until
        return int(user.failed_logins)


def lock_user(db: Database, user_id: int, until: datetime) -> None:
    """Refuse logins of this account until `until`."""
    with db.session_scope() as session:
        user = session.get(StaffUser, user_id)
        if user is not None:
            user.locked_until = until


def record_login_success(db: Database, user_id: int, password_hash: str | None = None) -> None:
    """Reset the failure count, remember the time, store a rehashed password if given."""
    with db.session_scope() as session:
        user = session.get(StaffUser, user_id)
        if user is None:
            raise NotFound(f"staff user {user_id}")
        user.failed_logins = 0
        user.locked_until = None
        user.last_login_at = utcnow()
        if password_hash:
            user.password_hash = password_hash


# --- sessions -------------------------------------------------------------------------


def create_session(db: Database, *, user_id: int, token_hash: str, csrf_token: str,
                   expires_at: datetime) -> None:
    """Store a signed-in browser (only the token's hash)."""
    with db.session_scope() as session:
        session.add(StaffSession(user_id=user_id, token_hash=token_hash, csrf_token=csrf_token,
                                 expires_at=expires_at, last_seen_at=utcnow()))


def session_with_user(db: Database, token_hash: str) -> tuple[StaffSession, StaffUser] | None:
    """The session for this token hash and its account, if both exist."""
    with db.session_scope() as session:
        row = session.execute(
            select(StaffSession, StaffUser)
            .join(StaffUser, StaffUser.id == StaffSession.user_id)
            .where(StaffSession.token_hash == token_hash)
        ).first()
        return (row[0], row[1]) if row else None


def touch_session(db: Database, session_id: int, at: datetime) -> None:
    """Remember that the browser was active (for the idle expiry)."""
    with db.session_scope() as session:
        row = session.get(StaffSession, session_id)
        if row is not None:
            row.last_seen_at = at


def delete_session(db: Database, token_hash: str) -> None:
    """End one session (logout, expiry)."""
    with db.session_scope() as session:
        session.query(StaffSession).filter(StaffSession.token_hash == token_hash).delete()


# --- audit log ------------------------------------------------------------------------


def audit(db: Database, *, user: StaffUser | None, action: str, target_kind: str | None = None,
          target_id: str | None = None, detail: str | None = None,
          username: str | None = None) -> None:
    """Write who did what to which record."""
    with db.session_scope() as session:
        session.add(AuditEntry(
            user_id=user.id if user else None,
            username=(user.username if user else username or "-")[:64],
            action=action, target_kind=target_kind,
            target_id=str(target_id)[:255] if target_id is not None else None,
            detail=detail,
        ))


def recent_failures(db: Database, *, since: datetime, address: str | None = None,
                    username: str | None = None) -> int:
    """Failed logins since `since` from one client address or for one username."""
    with db.session_scope() as session:
        query = select(func.count(AuditEntry.id)).where(
            AuditEntry.action == "login_failed", AuditEntry.at >= since
        )
        if address is not None:
            query = query.where(AuditEntry.target_id == address)
        if username is not None:
            query = query.where(AuditEntry.username == username[:64])
        return int(session.scalar(query) or 0)


@dataclass
class Page:
    """One page of rows and how many there are in all."""

    rows: list[Any]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        """Number of pages (at least one)."""
        return max(1, -(-self.total // self.per_page))


def audit_entries(db: Database, *, username: str = "", action: str = "",
                  since: datetime | None = None, until: datetime | None = None,
                  page: int = 1, per_page: int = 50) -> Page:
    """The audit log, newest first, filtered by who, what and when."""
    with db.session_scope() as session:
        query = select(AuditEntry)
        if username:
            query = query.where(AuditEntry.username == username.lower())
        if action:
            query = query.where(AuditEntry.action == action)
        if since:
            query = query.where(AuditEntry.at >= since)
        if until:
            query = query.where(AuditEntry.at < until)
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                               .limit(per_page).offset((page - 1) * per_page))
        return Page(list(rows), int(total), page, per_page)


def audit_actions(db: Database) -> list[str]:
    """Every action name in the log, for the filter."""
    with db.session_scope() as session:
        return sorted(session.scalars(select(AuditEntry.action).distinct()))


# --- conversations --------------------------------------------------------------------


@dataclass
class ConversationFilter:
    """What the conversations list is narrowed to."""

    since: datetime | None = None
    until: datetime | None = None
    channel: str = ""
    flag: str = ""
    topic: str = ""
    text: str = ""
    tag: str = ""

    def apply(self, query: Any) -> Any:
        """Add the WHERE clauses of this filter to a query on summaries."""
        summary = ConversationSummary
        if self.since:
            query = query.where(summary.started_at >= self.since)
        if self.until:
            query = query.where(summary.started_at < self.until)
        if self.channel:
            query = query.where(summary.channel == self.channel)
        if self.flag in FLAGS:
            query = query.where(getattr(summary, self.flag).is_(True))
        if self.topic:
            query = query.where(("," + summary.topics + ",").like(f"%,{_like(self.topic)},%",
                                                                  escape="\\"))
        if self.tag:
            query = query.where(("," + summary.tags + ",").like(f"%,{_like(self.tag)},%",
                                                                escape="\\"))
        if self.text:
            query = query.where(func.lower(summary.search_text)
                                .like(f"%{_like(self.text.lower())}%", escape="\\"))
        return query


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_conversations(db: Database, filters: ConversationFilter, *, page: int = 1,
                       per_page: int = 50) -> Page:
    """Conversation summaries, newest first, one page of them."""
    with db.session_scope() as session:
        query = filters.apply(select(ConversationSummary))
        total = session.scalar(filters.apply(select(func.count(ConversationSummary.conversation_id))))
        rows = session.scalars(
            query.order_by(ConversationSummary.started_at.desc())
            .limit(per_page).offset((page - 1) * per_page)
        )
        return Page(list(rows), int(total or 0), page, per_page)


def conversation_channels(db: Database) -> list[str]:
    """Channels conversations came from, for the filter."""
    with db.session_scope() as session:
        return sorted(session.scalars(select(ConversationSummary.channel).distinct()))


def get_summary(db: Database, conversation_id: str) -> ConversationSummary | None:
    """The summary row of one conversation, if it has one yet."""
    with db.session_scope() as session:
        return session.get(ConversationSummary, conversation_id)


def set_reviewed(db: Database, conversation_id: str, user: StaffUser, reviewed: bool) -> None:
    """Mark a conversation reviewed by this person (or not reviewed)."""
    with db.session_scope() as session:
        row = session.get(ConversationSummary, conversation_id)
        if row is None:
            raise NotFound(conversation_id)
        row.reviewed_at = utcnow() if reviewed else None
        row.reviewed_by_id = user.id if reviewed else None


def clean_tags(raw: str) -> str:
    """Tags as staff typed them, normalised to lower-case words joined by commas."""
    tags: list[str] = []
    for part in raw.replace(";", ",").split(","):
        tag = " ".join(part.strip().lower().split())[:40]
        if tag and tag not in tags:
            tags.append(tag)
    return ",".join(tags)[:500]


def set_tags(db: Database, conversation_id: str, tags: str) -> str:
    """Replace a conversation's tags; returns what was stored."""
    cleaned = clean_tags(tags)
    with db.session_scope() as session:
        row = session.get(ConversationSummary, conversation_id)
        if row is None:
            raise NotFound(conversation_id)
        row.tags = cleaned
    return cleaned


def add_note(db: Database, conversation_id: str, user: StaffUser, body: str) -> None:
    """A staff member's note on a conversation."""
    with db.session_scope() as session:
        session.add(ConversationNote(conversation_id=conversation_id, author_id=user.id,
                                     author_name=user.display_name, body=body.strip()[:5000]))


def notes_for(db: Database, conversation_id: str) -> list[ConversationNote]:
    """Notes on a conversation, oldest first."""
    with db.session_scope() as session:
        return list(session.scalars(
            select(ConversationNote).where(ConversationNote.conversation_id == conversation_id)
            .order_by(ConversationNote.created_at, ConversationNote.id)
        ))


def conversation_events(db: Database, conversation_id: str,
                        after_id: int = 0) -> list[dict[str, Any]]:
    """The tracker events of a conversation, in order, each with its parsed `data`."""
    with db.session_scope() as session:
        rows = session.execute(
            select(EVENTS.c.id, EVENTS.c.type_name, EVENTS.c.timestamp, EVENTS.c.data)
            .where(EVENTS.c.sender_id == conversation_id, EVENTS.c.id > after_id)
            .order_by(EVENTS.c.id)
        ).all()
    events = []
    for row in rows:
        try:
            data = json.loads(row.data) if row.data else {}
        except ValueError:
            data = {}
        events.append({"id": row.id, "type": row.type_name, "timestamp": row.timestamp,
                       "data": data if isinstance(data, dict) else {}})
    return events


def last_event_id(db: Database, conversation_id: str) -> int:
    """Id of the newest stored event of a conversation (0 when none), for live updates."""
    with db.session_scope() as session:
        return int(session.scalar(
            select(func.max(EVENTS.c.id)).where(EVENTS.c.sender_id == conversation_id)
        ) or 0)


def feedback_for(db: Database, conversation_id: str) -> list[AnswerFeedback]:
    """Thumbs up/down the patient gave in a conversation."""
    with db.session_scope() as session:
        return list(session.scalars(
            select(AnswerFeedback).where(AnswerFeedback.conversation_id == conversation_id)
            .order_by(AnswerFeedback.created_at)
        ))


# --- queue: bookings and call-backs ---------------------------------------------------


def list_bookings(db: Database, statuses: Sequence[str] = OPEN_BOOKING_STATUSES,
                  limit: int = 200) -> list[BookingRequest]:
    """Booking requests in these statuses, newest first."""
    with db.session_scope() as session:
        return list(session.scalars(
            select(BookingRequest).where(BookingRequest.status.in_(statuses))
            .order_by(BookingRequest.created_at.desc()).limit(limit)
        ))


def list_handoffs(db: Database, statuses: Sequence[str] = OPEN_HANDOFF_STATUSES,
                  limit: int = 200) -> list[HandoffRequest]:
    """Handoffs and call-back requests in these statuses, newest first."""
    with db.session_scope() as session:
        return list(session.scalars(
            select(HandoffRequest).where(HandoffRequest.status.in_(statuses))
            .order_by(HandoffRequest.created_at.desc()).limit(limit)
        ))


def get_booking(db: Database, booking_id: int) -> BookingRequest:
    """One booking request."""
    with db.session_scope() as session:
        row = session.get(BookingRequest, booking_id)
        if row is None:
            raise NotFound(f"booking {booking_id}")
        return row


def get_handoff(db: Database, handoff_id: int) -> HandoffRequest:
    """One handoff or call-back request."""
    with db.session_scope() as session:
        row = session.get(HandoffRequest, handoff_id)
        if row is None:
            raise NotFound(f"handoff {handoff_id}")
        return row


def handoffs_of(db: Database, conversation_id: str) -> list[HandoffRequest]:
    """Every handoff of one conversation, newest first."""
    with db.session_scope() as session:
        return list(session.scalars(
            select(HandoffRequest).where(HandoffRequest.conversation_id == conversation_id)
            .order_by(HandoffRequest.created_at.desc())
        ))


def bookings_of(db: Database, conversation_id: str) -> list[BookingRequest]:
    """Every booking request of one conversation."""
    with db.session_scope() as session:
        return list(session.scalars(
            select(BookingRequest).where(BookingRequest.conversation_id == conversation_id)
            .order_by(BookingRequest.created_at.desc())
        ))


def update_request(db: Database, kind: str, ref_id: int, *, by: StaffUser,
                   status: str | None = None, assignee_id: int | None = None,
                   note: str = "", unassign: bool = False) -> StatusChange | None:
    """Change a booking's or handoff's status, assignee or add a note, with its history row.

    Returns the history row, or None when nothing changed.
    """
    model: Any = BookingRequest if kind == "booking" else HandoffRequest
    allowed = BOOKING_STATUSES if kind == "booking" else HANDOFF_STATUSES
    if status is not None and status not in allowed:
        raise ValueError(f"status must be one of {', '.join(allowed)}")
    with db.session_scope() as session:
        row = session.get(model, ref_id)
        if row is None:
            raise NotFound(f"{kind} {ref_id}")
        before = row.status
        new_assignee = None if unassign else (assignee_id if assignee_id is not None
                                              else row.assignee_id)
        changed = (status and status != before) or new_assignee != row.assignee_id or note.strip()
        if not changed:
            return None
        now = utcnow()
        if status:
            row.status = status
            row.closed_at = now if status in ("booked", "closed") else None
        row.assignee_id = new_assignee
        row.updated_at = now
        change = StatusChange(kind=kind, ref_id=ref_id, from_status=before,
                              to_status=row.status, assignee_id=row.assignee_id,
                              note=note.strip()[:2000] or None, by_id=by.id,
                              by_name=by.display_name, at=now)
        session.add(change)
        session.flush()
        return change


def history(db: Database, kind: str, ref_id: int) -> list[StatusChange]:
    """Who changed a booking or handoff, what and when, oldest first."""
    with db.session_scope() as session:
        return list(session.scalars(
            select(StatusChange).where(StatusChange.kind == kind, StatusChange.ref_id == ref_id)
            .order_by(StatusChange.at, StatusChange.id)
        ))


# --- red-flag and crisis alerts -------------------------------------------------------


def list_alerts(db: Database, *, acknowledged: bool | None = False,
                limit: int = 200) -> list[RedFlagAlert]:
    """Alerts, newest first; unacknowledged ones by default."""
    with db.session_scope() as session:
        query = select(RedFlagAlert)
        if acknowledged is False:
            query = query.where(RedFlagAlert.acknowledged_at.is_(None))
        elif acknowledged is True:
            query = query.where(RedFlagAlert.acknowledged_at.is_not(None))
        return list(session.scalars(query.order_by(RedFlagAlert.created_at.desc()).limit(limit)))


def get_alert(db: Database, alert_id: int) -> tuple[RedFlagAlert, list[RedFlagAlertFlag]]:
    """One alert and its flags."""
    with db.session_scope() as session:
        row = session.get(RedFlagAlert, alert_id)
        if row is None:
            raise NotFound(f"alert {alert_id}")
        flags = list(session.scalars(
            select(RedFlagAlertFlag).where(RedFlagAlertFlag.alert_id == alert_id)
        ))
        return row, flags


def alerts_of(db: Database, conversation_id: str) -> list[RedFlagAlert]:
    """Every alert of one conversation."""
    with db.session_scope() as session:
        return list(session.scalars(
            select(RedFlagAlert).where(RedFlagAlert.conversation_id == conversation_id)
            .order_by(RedFlagAlert.created_at)
        ))


def acknowledge_alert(db: Database, alert_id: int, *, by: StaffUser, outcome: str) -> RedFlagAlert:
    """A named person reviewed an alert and says what was done."""
    with db.session_scope() as session:
        row = session.get(RedFlagAlert, alert_id)
        if row is None:
            raise NotFound(f"alert {alert_id}")
        row.acknowledged_at = utcnow()
        row.acknowledged_by_id = by.id
        row.outcome = outcome.strip()[:500]
        return row


def user_names(db: Database, ids: Iterable[int | None]) -> dict[int, str]:
    """Display names of these accounts, by id."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    with db.session_scope() as session:
        rows = session.execute(
            select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(wanted))
        ).all()
        return {int(user_id): str(name) for user_id, name in rows}


# --- inbox ----------------------------------------------------------------------------


@dataclass
class InboxItem:
    """One thing that needs a person now."""

    kind: str  # waiting, callback, booking, alert
    at: datetime
    title: str
    detail: str
    url: str
    conversation_id: str
    urgent: bool = False


@dataclass
class InboxCounts:
    """How many of each kind are waiting (shown in the navigation)."""

    waiting: int = 0
    callbacks: int = 0
    bookings: int = 0
    alerts: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Everything that needs a person."""
        return self.waiting + self.callbacks + self.bookings + self.alerts

    def as_dict(self) -> dict[str, int]:
        """For the server-sent events stream."""
        return {"waiting": self.waiting, "callbacks": self.callbacks,
                "bookings": self.bookings, "alerts": self.alerts, "total": self.total}


def inbox_counts(db: Database) -> InboxCounts:
    """Counts for the navigation badges, four small indexed queries."""
    with db.session_scope() as session:
        open_handoffs = session.execute(
            select(HandoffRequest.callback_requested, func.count(HandoffRequest.id))
            .where(HandoffRequest.status == "open").group_by(HandoffRequest.callback_requested)
        ).all()
        bookings = session.scalar(
            select(func.count(BookingRequest.id)).where(BookingRequest.status == "new"))
        alerts = session.scalar(
            select(func.count(RedFlagAlert.id)).where(RedFlagAlert.acknowledged_at.is_(None)))
    counts = InboxCounts(bookings=int(bookings or 0), alerts=int(alerts or 0))
    for callback, n in open_handoffs:
        if callback:
            counts.callbacks += int(n)
        else:
            counts.waiting += int(n)
    return counts


def inbox_items(db: Database, limit: int = 100) -> list[InboxItem]:
    """Open handoffs, call-backs, new bookings and unacknowledged alerts, newest first."""
    items: list[InboxItem] = []
    with db.session_scope() as session:
        for h in session.scalars(select(HandoffRequest).where(HandoffRequest.status == "open")
                                 .order_by(HandoffRequest.created_at.desc()).limit(limit)):
            if h.callback_requested:
                items.append(InboxItem("callback", h.created_at, "Call-back requested",
                                       h.reason, f"/queue/handoffs/{h.id}", h.conversation_id))
            else:
                title = ("Patient waiting in the chat" if h.within_hours
                         else "Asked for a person (out of hours)")
                items.append(InboxItem("waiting", h.created_at, title, h.reason,
                                       f"/conversations/{h.conversation_id}", h.conversation_id,
                                       urgent=bool(h.within_hours)))
        for b in session.scalars(select(BookingRequest).where(BookingRequest.status == "new")
                                 .order_by(BookingRequest.created_at.desc()).limit(limit)):
            items.append(InboxItem("booking", b.created_at, f"Booking request {b.reference}",
                                   f"{b.body_part}: {b.preferred_times}",
                                   f"/queue/bookings/{b.id}", b.conversation_id))
        for a in session.scalars(select(RedFlagAlert).where(RedFlagAlert.acknowledged_at.is_(None))
                                 .order_by(RedFlagAlert.created_at.desc()).limit(limit)):
            crisis = "crisis" in (a.categories or "").split(",")
            title = ("Crisis alert" if crisis else
                     "Emergency red flag" if a.tier == "emergency" else "Urgent red flag")
            items.append(InboxItem("alert", a.created_at, title, a.flags.replace(",", ", "),
                                   f"/alerts/{a.id}", a.conversation_id, urgent=True))
    items.sort(key=lambda item: item.at, reverse=True)
    return items[:limit]


# --- NLU corrections ------------------------------------------------------------------


def add_correction(db: Database, *, conversation_id: str, message_timestamp: str, text: str,
                   predicted_intent: str | None, predicted_confidence: str | None,
                   corrected_intent: str | None, new_topic: str | None,
                   by: StaffUser) -> NluCorrection:
    """Label one user message (replacing an earlier label of the same message)."""
    with db.session_scope() as session:
        row = session.scalars(select(NluCorrection).where(
            NluCorrection.conversation_id == conversation_id,
            NluCorrection.message_timestamp == message_timestamp,
        )).first()
        if row is None:
            row = NluCorrection(conversation_id=conversation_id,
                                message_timestamp=message_timestamp)
            session.add(row)
        row.text = text
        row.predicted_intent = predicted_intent
        row.predicted_confidence = predicted_confidence
        row.corrected_intent = corrected_intent or None
        row.new_topic = (new_topic or "").strip()[:200] or None
        row.created_by_id = by.id
        row.created_by_name = by.display_name
        row.created_at = utcnow()
        session.flush()
        return row


def list_corrections(db: Database, limit: int = 500) -> list[NluCorrection]:
    """Labels staff gave, newest first."""
    with db.session_scope() as session:
        return list(session.scalars(
            select(NluCorrection).order_by(NluCorrection.created_at.desc()).limit(limit)))


def corrections_of(db: Database, conversation_id: str) -> dict[str, NluCorrection]:
    """Labels of one conversation's messages, by message timestamp."""
    with db.session_scope() as session:
        return {row.message_timestamp: row for row in session.scalars(
            select(NluCorrection).where(NluCorrection.conversation_id == conversation_id))}


def most_corrected(db: Database, limit: int = 15) -> list[tuple[str, int]]:
    """Intents the bot predicted that staff corrected most often."""
    with db.session_scope() as session:
        rows = session.execute(
            select(NluCorrection.predicted_intent, func.count(NluCorrection.id))
            .where(NluCorrection.predicted_intent.is_not(None))
            .group_by(NluCorrection.predicted_intent)
            .order_by(func.count(NluCorrection.id).desc()).limit(limit)
        ).all()
    return [(str(intent), int(n)) for intent, n in rows]


# --- dashboard ------------------------------------------------------------------------


@dataclass
class Dashboard:
    """Figures for one period."""

    since: datetime
    until: datetime
    conversations: int = 0
    per_day: list[tuple[str, int]] = field(default_factory=list)
    top_topics: list[tuple[str, int]] = field(default_factory=list)
    not_understood: int = 0
    contained: int = 0
    bookings: int = 0
    handoffs: int = 0
    red_flags: int = 0
    crisis: int = 0
    feedback: list[tuple[str, int, int]] = field(default_factory=list)
    hours: list[int] = field(default_factory=lambda: [0] * 24)

    def rate(self, part: int) -> float:
        """A share of all conversations in the period, 0-100."""
        return 100.0 * part / self.conversations if self.conversations else 0.0


def dashboard(db: Database, since: datetime, until: datetime, tz: Any) -> Dashboard:
    """Figures for conversations that started in [since, until), days and hours in `tz`."""
    result = Dashboard(since=since, until=until)
    days: Counter[str] = Counter()
    topics: Counter[str] = Counter()
    day = since.astimezone(tz).date()
    while day < until.astimezone(tz).date() or (day == until.astimezone(tz).date()
                                                 and until.astimezone(tz).time() > datetime.min.time()):
        days[day.isoformat()] = 0
        day += timedelta(days=1)
    s = ConversationSummary
    with db.session_scope() as session:
        rows = session.execute(
            select(s.started_at, s.topics, s.not_understood, s.handoff, s.taken_over,
                   s.staff_replied)
            .where(s.started_at >= since, s.started_at < until)
        ).all()
        result.bookings = int(session.scalar(select(func.count(BookingRequest.id)).where(
            BookingRequest.created_at >= since, BookingRequest.created_at < until)) or 0)
        result.handoffs = int(session.scalar(select(func.count(HandoffRequest.id)).where(
            HandoffRequest.created_at >= since, HandoffRequest.created_at < until)) or 0)
        for categories in session.scalars(
            select(RedFlagAlert.categories).where(
                RedFlagAlert.created_at >= since, RedFlagAlert.created_at < until)
        ):
            if "crisis" in (categories or "").split(","):
                result.crisis += 1
            else:
                result.red_flags += 1
        feedback = session.execute(
            select(AnswerFeedback.topic, AnswerFeedback.helpful, func.count(AnswerFeedback.id))
            .where(AnswerFeedback.created_at >= since, AnswerFeedback.created_at < until)
            .group_by(AnswerFeedback.topic, AnswerFeedback.helpful)
        ).all()
    for started_at, topic_list, not_understood, handoff, taken_over, staff_replied in rows:
        local = started_at.astimezone(tz)
        days[local.date().isoformat()] += 1
        result.hours[local.hour] += 1
        topics.update(t for t in (topic_list or "").split(",") if t)
        result.not_understood += bool(not_understood)
        result.contained += not (handoff or taken_over or staff_replied)
    result.conversations = len(rows)
    result.per_day = sorted(days.items())
    result.top_topics = topics.most_common(10)
    thumbs: dict[str, list[int]] = {}
    for topic, helpful, n in feedback:
        thumbs.setdefault(topic, [0, 0])[0 if helpful else 1] += int(n)
    result.feedback = sorted(((t, up, down) for t, (up, down) in thumbs.items()),
                             key=lambda x: -(x[1] + x[2]))
    return result

