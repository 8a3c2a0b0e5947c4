"""What every aggregate's store shares: the database, the settings, `NotFound`.

`bot.storage.bookings`, `handoffs`, `alerts`, `feedback` and `outbox` each define one
store class on `Store`; `bot.storage.repository.Repository` combines them for callers
that want every operation on one object. Methods return frozen dataclasses, never ORM
rows, so a record can be passed around after its session is closed.
"""

from __future__ import annotations

from datetime import datetime

from bot.settings import Settings, get_settings
from bot.storage.database import Database, get_database


class NotFound(LookupError):
    """The row asked for does not exist."""


def iso(value: datetime | None) -> str | None:
    """An aware datetime as ISO 8601 text for a JSON payload (None stays None)."""
    return value.isoformat() if value is not None else None


def split_keys(value: str | None) -> tuple[str, ...]:
    """A comma-separated column (flags, categories) as a tuple without empty items."""
    return tuple(item for item in (value or "").split(",") if item)


class Store:
    """Storage operations on one database; every method is one transaction.

    Args:
        database: A `Database`, a URL, or None for the shared database from settings.
        schema: PostgreSQL schema (only used when `database` is a URL or None).
        settings: Settings for retry limits; None means `get_settings()`, read when
            first needed.
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
        """The settings this store follows."""
        return self._settings or get_settings()
