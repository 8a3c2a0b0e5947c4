"""A down or broken database gives callers one clear error and nothing half-saved."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import ProgrammingError

from bot.storage.database import Database, DatabaseUnavailable, create_engine_for
from bot.storage.migrate import upgrade
from bot.storage.models import BookingRequest
from bot.storage.repository import Repository

REFUSED_POSTGRES = "postgresql://postgres@127.0.0.1:1/test"


def test_refused_postgres_connection_raises_database_unavailable(
    booking_fields: Callable[..., dict[str, Any]],
) -> None:
    repo = Repository(Database(REFUSED_POSTGRES))
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as caught:
        repo.create_booking_request(**booking_fields(notify_channels=("email",)))
    assert time.monotonic() - started < 10
    assert "refused" in str(caught.value).lower()
    with pytest.raises(DatabaseUnavailable):
        repo.open_handoffs()


def test_migrating_an_unreachable_database_raises_database_unavailable() -> None:
    with pytest.raises(DatabaseUnavailable):
        upgrade(REFUSED_POSTGRES)


def test_sqlite_path_that_cannot_be_opened_raises_database_unavailable(
    tmp_path: Path, booking_fields: Callable[..., dict[str, Any]]
) -> None:
    # The "database file" is a directory: SQLite cannot open it.
    repo = Repository(Database(f"sqlite:///{tmp_path}"))
    with pytest.raises(DatabaseUnavailable):
        repo.create_booking_request(**booking_fields())


def test_nothing_is_half_written_when_the_outbox_write_fails(
    database: Database, repo: Repository, booking_fields: Callable[..., dict[str, Any]]
) -> None:
    with database.engine.begin() as connection:
        connection.execute(text("DROP TABLE notification_outbox"))

    with pytest.raises((DatabaseUnavailable, ProgrammingError)):
        repo.create_booking_request(**booking_fields(notify_channels=("email",)))

    with database.session_scope() as session:
        assert (
            session.execute(
                select(func.count()).select_from(BookingRequest)
            ).scalar_one()
            == 0
        )


def test_engines_are_created_lazily(tmp_path: Path) -> None:
    target = tmp_path / "not-yet" / "clinic.db"
    db = Database(f"sqlite:///{target}")
    assert not target.parent.exists()
    assert db.dialect == "sqlite"
    create_engine_for(f"sqlite:///{target}")  # makes the folder, but opens nothing
    assert target.parent.exists()
    assert not target.exists()


def test_invalid_schema_name_is_refused() -> None:
    with pytest.raises(ValueError):
        Database(
            "postgresql://postgres@127.0.0.1/test", schema='x"; DROP SCHEMA public;--'
        )
