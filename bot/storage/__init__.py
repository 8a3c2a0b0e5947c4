"""Persistence for what the assistant promises patients it will pass on to staff.

Booking requests, hand-offs, red-flag alerts, answer feedback and the notification
outbox live here so that nothing a patient tells the bot is lost when an email server
or webhook is down. Import `Repository` for the operations and `DatabaseUnavailable`
to tell the patient that their request could not be saved.
"""

from bot.storage.database import (
    Database,
    DatabaseUnavailable,
    get_database,
    session_scope,
)
from bot.storage.repository import (
    AlertRecord,
    BookingRecord,
    FeedbackRecord,
    HandoffRecord,
    OutboxRecord,
    Repository,
    ValidationError,
)

__all__ = [
    "AlertRecord",
    "BookingRecord",
    "Database",
    "DatabaseUnavailable",
    "FeedbackRecord",
    "HandoffRecord",
    "OutboxRecord",
    "Repository",
    "ValidationError",
    "get_database",
    "session_scope",
]
