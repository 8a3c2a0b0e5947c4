"""Red-flag alerts: messages that matched emergency, urgent or crisis signs.

An alert is stored with one `red_flag_alert_flags` row per matched flag (its tier and
category, as the safety data defines them and the caller passes them), so reviews and
counts can go per flag, and with the outbox rows that tell staff, in one transaction.
Recording an alert never fails on the patient's text: the excerpt is cleaned and cut.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.storage.base import NotFound, Store, iso, split_keys
from bot.storage.models import ALERT_TIERS, RedFlagAlert, RedFlagAlertFlag, utcnow
from bot.storage.outbox import add_rows, check_channels
from bot.validation import (
    MAX_CATEGORIES,
    MAX_CONVERSATION_ID,
    MAX_EXCERPT,
    MAX_FLAGS,
    ValidationError,
    check_keys,
    check_required,
    clean_excerpt,
)


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
class AlertFlagRecord:
    """One flag of an alert with its own tier and category."""

    alert_id: int
    flag: str
    tier: str
    category: str


def alert_record(row: RedFlagAlert) -> AlertRecord:
    """The record of an alert row."""
    return AlertRecord(
        id=row.id,
        conversation_id=row.conversation_id,
        flags=split_keys(row.flags),
        message_excerpt=row.message_excerpt,
        created_at=row.created_at,
        acknowledged_at=row.acknowledged_at,
        tier=row.tier,
        categories=split_keys(row.categories),
    )


def red_flag_payload(row: RedFlagAlert) -> dict[str, Any]:
    """Return what staff are told about a red-flag alert."""
    return {
        "alert_id": row.id,
        "conversation_id": row.conversation_id,
        "flags": list(split_keys(row.flags)),
        "tier": row.tier,
        "categories": list(split_keys(row.categories)),
        "message_excerpt": row.message_excerpt,
        "created_at": iso(row.created_at),
    }


def _per_flag(
    keys: Sequence[str],
    details: Mapping[str, Sequence[str]] | None,
    tier: str,
    kinds: Sequence[str],
) -> list[tuple[str, str, str]]:
    """Return (flag, tier, category) for each flag.

    The alert's own tier and first category stand in for a flag the caller gave no
    details for (an alert spooled by an older version).
    """
    rows = []
    for key in keys:
        given = list((details or {}).get(key) or ())
        flag_tier = given[0] if given and given[0] in ALERT_TIERS else tier
        category = given[1] if len(given) > 1 and given[1] else kinds[0]
        rows.append((key, flag_tier, str(category)[:32]))
    return rows


class AlertStore(Store):
    """Recording, listing and acknowledging red-flag alerts."""

    def record_red_flag(
        self,
        *,
        conversation_id: str,
        flags: Sequence[str],
        message: str,
        tier: str = "emergency",
        categories: Sequence[str] = ("back_knee",),
        flag_details: Mapping[str, Sequence[str]] | None = None,
        notify_channels: Sequence[str] = (),
    ) -> AlertRecord:
        """Store a red-flag alert, a row per flag, and its notifications, atomically.

        Args:
            conversation_id: Rasa sender id.
            flags: Matched red-flag keys (lower-case identifiers, e.g.
                ``cauda_equina``).
            message: The patient's message; stored cleaned and cut to 500 characters.
            tier: ``emergency`` or ``urgent``, the most urgent of the flags.
            categories: Kinds of flag (``back_knee``, ``post_surgery``, ``general``,
                ``crisis``).
            flag_details: Each flag's ``(tier, category)`` from the safety data
                (`bot.records` looks them up); missing ones get `tier` and the first
                of `categories`.
            notify_channels: Outbox channels to write a row for (the caller decides).

        Returns:
            The stored alert.

        Raises:
            ValidationError: No flags, or a flag that is not a plain key.
            DatabaseUnavailable: The database could not be reached; nothing was stored.
        """
        conversation = check_required("conversation_id", conversation_id, MAX_CONVERSATION_ID)
        keys = check_keys("flags", flags, "cauda_equina")
        joined = ",".join(keys)
        if len(joined) > MAX_FLAGS:
            raise ValidationError("flags", "too many flags")
        if tier not in ALERT_TIERS:
            raise ValidationError("tier", f"must be one of {', '.join(ALERT_TIERS)}")
        kinds = check_keys("categories", categories, "back_knee")
        channels = check_channels(notify_channels)
        with self.database.session_scope() as session:
            now = utcnow()
            row = RedFlagAlert(
                conversation_id=conversation,
                flags=joined,
                tier=tier,
                categories=",".join(kinds)[:MAX_CATEGORIES],
                message_excerpt=clean_excerpt(message, MAX_EXCERPT),
                created_at=now,
            )
            session.add(row)
            session.flush()
            for flag, flag_tier, category in _per_flag(keys, flag_details, tier, kinds):
                session.add(
                    RedFlagAlertFlag(alert_id=row.id, flag=flag, tier=flag_tier, category=category)
                )
            add_rows(session, "red_flag", row.id, red_flag_payload(row), channels, now)
            session.flush()
            return alert_record(row)

    def alert_flags(self, alert_id: int) -> list[AlertFlagRecord]:
        """Return the per-flag rows of one alert, in the order the flags were given."""
        with self.database.session_scope() as session:
            rows = session.execute(
                select(RedFlagAlertFlag)
                .where(RedFlagAlertFlag.alert_id == alert_id)
                .order_by(RedFlagAlertFlag.id)
            ).scalars()
            return [
                AlertFlagRecord(alert_id=r.alert_id, flag=r.flag, tier=r.tier, category=r.category)
                for r in rows
            ]

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
            return alert_record(row)

    def unacknowledged_red_flags(self) -> list[AlertRecord]:
        """Return alerts no clinician has acknowledged yet, oldest first."""
        with self.database.session_scope() as session:
            rows = session.execute(
                select(RedFlagAlert)
                .where(RedFlagAlert.acknowledged_at.is_(None))
                .order_by(RedFlagAlert.created_at, RedFlagAlert.id)
            ).scalars()
            return [alert_record(row) for row in rows]
