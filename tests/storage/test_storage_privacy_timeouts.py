"""Database errors carry no patient values, and a slow statement is cut short."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DataError

from bot.settings import get_settings
from bot.storage.database import Database, DatabaseUnavailable

PATIENT_VALUE = "Mary O'Neill +441632960123"


def test_database_error_does_not_carry_bound_values(postgres_url: str) -> None:
    db = Database(postgres_url)
    try:
        with pytest.raises(DataError) as caught:
            with db.session_scope() as session:
                session.execute(text("CREATE TEMP TABLE probe (v varchar(5))"))
                session.execute(text("INSERT INTO probe VALUES (:v)"), {"v": PATIENT_VALUE})
    finally:
        db.dispose()
    assert "Mary" not in str(caught.value) and "441632960123" not in str(caught.value)


def test_slow_statement_is_cancelled_by_the_statement_timeout(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_SECONDS", "1")
    get_settings.cache_clear()
    db = Database(postgres_url)
    started = time.monotonic()
    try:
        with pytest.raises(DatabaseUnavailable):
            with db.session_scope() as session:
                session.execute(text("SELECT pg_sleep(20)"))
    finally:
        db.dispose()
    assert time.monotonic() - started < 5
