"""Hand-offs to staff: a conversation the bot passed to a person, and where it stands.

Opened with the outbox rows that tell staff (one transaction). Contact details for a
call back are stored only with the patient's consent, and the time of that consent is
kept with them (`contact_consent_at`), as a booking keeps its consent time. Staff take
a live hand-off over (`taken`), give it back (`released`), and work a call back through
the queue's lifecycle (contacted, booked, no answer, closed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.storage.base import NotFound, Store, iso
from bot.storage.models import HANDOFF_STATUSES, HandoffRequest, utcnow
from bot.storage.outbox import add_rows, check_channels
from bot.validation import (
    MAX_CONVERSATION_ID,
    MAX_NAME,
    MAX_REASON,
    MAX_STAFF_NAME,
    MAX_TOPIC,
    ValidationError,
    check_aware,
    check_phone,
    check_required,
    check_text,
    clean_excerpt,
)

_WORKED = frozenset({"contacted", "booked", "no_answer", "closed"})
HANDOFF_TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"taken"}) | _WORKED,
    "taken": frozenset({"taken", "released", "open"}) | _WORKED,
    "released": frozenset({"taken", "open"}) | _WORKED,
    "contacted": frozenset({"booked", "no_answer", "closed", "taken"}),
    "no_answer": frozenset({"contacted", "booked", "closed", "taken"}),
    "booked": frozenset({"closed"}),
    "closed": frozenset(),
}


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
    contact_consent_at: datetime | None = None


def handoff_record(row: HandoffRequest) -> HandoffRecord:
    """The record of a hand-off row."""
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
        contact_consent_at=row.contact_consent_at,
    )


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
        "created_at": iso(row.created_at),
    }


class HandoffStore(Store):
    """Opening, moving and listing hand-offs."""

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
        contact_consent_at: datetime | None = None,
        notify_channels: Sequence[str] = (),
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
            contact_consent_at: When they agreed (aware datetime); None means now.
                Stored only when contact details are.
            notify_channels: Outbox channels to write a row for (the caller decides).

        Returns:
            The new hand-off, status ``open``.

        Raises:
            ValidationError: Contact details without consent, a call back without a
                phone number, or a malformed phone number.
            DatabaseUnavailable: The database could not be reached; nothing was stored.
        """
        conversation = check_required("conversation_id", conversation_id, MAX_CONVERSATION_ID)
        if not contact_consented and (contact_name or contact_phone):
            raise ValidationError(
                "contact_consented", "contact details may only be stored with consent"
            )
        name = check_text("contact_name", contact_name, MAX_NAME, required=False)
        phone = check_phone("contact_phone", contact_phone, required=False)
        if callback_requested and phone is None:
            raise ValidationError("contact_phone", "a call back needs a phone number")
        consent_at = (
            check_aware("contact_consent_at", contact_consent_at)
            if contact_consent_at is not None
            else None
        )
        channels = check_channels(notify_channels)
        with self.database.session_scope() as session:
            now = utcnow()
            has_contact = name is not None or phone is not None
            row = HandoffRequest(
                conversation_id=conversation,
                reason=clean_excerpt(reason, MAX_REASON) or "unspecified",
                last_topic=clean_excerpt(last_topic, MAX_TOPIC) or None,
                contact_name=name,
                contact_phone=phone,
                contact_consent_at=(consent_at or now) if has_contact else None,
                status="open",
                within_hours=bool(within_hours),
                callback_requested=bool(callback_requested),
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            add_rows(session, "handoff", row.id, handoff_payload(row), channels, now)
            session.flush()
            return handoff_record(row)

    def set_handoff_status(
        self, handoff_id: int, status: str, *, taken_by: str | None = None
    ) -> HandoffRecord:
        """Move a hand-off along its lifecycle (see `HANDOFF_TRANSITIONS`).

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
        staff = check_text("taken_by", taken_by, MAX_STAFF_NAME, required=status == "taken")
        with self.database.session_scope() as session:
            row = session.get(HandoffRequest, handoff_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no hand-off {handoff_id}")
            if row.status == status and status != "taken":
                return handoff_record(row)
            if status not in HANDOFF_TRANSITIONS.get(row.status, frozenset()):
                raise ValidationError(
                    "status", f"cannot go from {row.status} to {status}"
                )
            row.status = status
            if status == "taken":
                row.taken_by = staff
            elif status == "open":
                row.taken_by = None
            row.updated_at = utcnow()
            if status == "closed":
                row.closed_at = row.updated_at
            session.flush()
            return handoff_record(row)

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
            return [handoff_record(row) for row in rows]
