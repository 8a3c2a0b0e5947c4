"""Every storage operation on one object: the facade over the aggregate stores.

`Repository` combines `BookingStore`, `HandoffStore`, `AlertStore`, `FeedbackStore` and
`OutboxStore` (one module each in `bot.storage`), so callers that want everything, like
`bot.records` and the tests, keep one import. Every method opens its own transaction;
methods return frozen dataclasses, never ORM rows. The record classes, payload builders
and validation names are re-exported here for the same reason.

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

from bot.storage.alerts import AlertFlagRecord, AlertRecord, AlertStore, red_flag_payload
from bot.storage.base import NotFound
from bot.storage.bookings import (
    REFERENCE_ALPHABET,
    REFERENCE_PATTERN,
    REFERENCE_PREFIX,
    BookingRecord,
    BookingStore,
    booking_payload,
    new_reference,
)
from bot.storage.feedback import FeedbackRecord, FeedbackStore
from bot.storage.handoffs import HANDOFF_TRANSITIONS, HandoffRecord, HandoffStore, handoff_payload
from bot.storage.outbox import DEFAULT_LEASE_SECONDS, OutboxRecord, OutboxStore, backoff_delay
from bot.validation import MAX_EXCERPT, ValidationError, clean_excerpt

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "HANDOFF_TRANSITIONS",
    "MAX_EXCERPT",
    "REFERENCE_ALPHABET",
    "REFERENCE_PATTERN",
    "REFERENCE_PREFIX",
    "AlertFlagRecord",
    "AlertRecord",
    "BookingRecord",
    "FeedbackRecord",
    "HandoffRecord",
    "NotFound",
    "OutboxRecord",
    "Repository",
    "ValidationError",
    "backoff_delay",
    "booking_payload",
    "clean_excerpt",
    "handoff_payload",
    "new_reference",
    "red_flag_payload",
]


class Repository(BookingStore, HandoffStore, AlertStore, FeedbackStore, OutboxStore):
    """All storage operations for one database (see the aggregate stores).

    Args:
        database: A `Database`, a URL, or None for the shared database from settings.
        schema: PostgreSQL schema (only used when `database` is a URL or None).
        settings: Settings for retry limits; None means `get_settings()`.
    """

