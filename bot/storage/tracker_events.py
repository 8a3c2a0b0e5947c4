"""Rasa's `events` table, as storage reads and deletes it, without importing Rasa.

The tracker store (`bot.tracker_store`, Rasa's SQLTrackerStore) writes one row per
event in the same database as our tables (one DATABASE_URL). Summaries fold these rows
and retention deletes them; both need only these columns, so the table is described
here with SQLAlchemy Core instead of reaching into Rasa.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

EVENTS = sa.table(
    "events",
    sa.column("id", sa.Integer),
    sa.column("sender_id", sa.String),
    sa.column("type_name", sa.String),
    sa.column("timestamp", sa.Float),
    sa.column("data", sa.Text),
)


def decode(data: str | None) -> dict[str, Any]:
    """One row's `data` as the event dict Rasa stored ({} when unreadable)."""
    try:
        value = json.loads(data or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def is_external(event: Mapping[str, Any]) -> bool:
    """Whether a user event was triggered through Rasa's API (a staff action), not typed.

    Staff take-over, replies and release reach the conversation as `trigger_intent` user
    events (`metadata.is_external`, Rasa's IS_EXTERNAL); they are not patient messages.
    """
    metadata = event.get("metadata")
    return isinstance(metadata, dict) and bool(metadata.get("is_external"))
