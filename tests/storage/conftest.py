"""Fixtures that give each storage test a freshly migrated real database.

Every test that asks for `database` (or `repo`) runs twice: on a SQLite file in
`tmp_path`, and on the local PostgreSQL server in a schema of its own (named after
this run, dropped afterwards), so parallel runs and other projects' tables never
collide. PostgreSQL is skipped when unreachable on a developer machine, but a
missing server fails the run under CI (CI=true), so a green CI always means both
backends were exercised.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from bot.settings import Settings, get_settings
from bot.storage.database import Database
from bot.storage.migrate import upgrade
from bot.storage.models import UTC
from bot.storage.repository import Repository
from tests.standins.database_link import DatabaseLink

POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
RUN_ID = uuid.uuid4().hex[:10]
_schema_numbers = itertools.count(1)


def _postgres_problem() -> str | None:
    engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        return str(exc.orig).strip().splitlines()[0]
    finally:
        engine.dispose()
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of the test PostgreSQL server; drops this run's schemas at the end."""
    problem = _postgres_problem()
    if problem:
        message = f"PostgreSQL at {POSTGRES_URL} unreachable: {problem}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    yield POSTGRES_URL
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        leftovers = connection.execute(
            text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :prefix"),
            {"prefix": f"t_{RUN_ID}_%"},
        ).scalars()
        for schema in list(leftovers):
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def drop_schema(url: str, schema: str) -> None:
    """Drop one test schema and everything in it."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'var' / 'clinic.db'}"
        upgrade(url)
        db = Database(url)
        yield db
        db.dispose()
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"t_{RUN_ID}_{next(_schema_numbers)}"
    upgrade(url, schema=schema)
    db = Database(url, schema=schema)
    yield db
    db.dispose()
    drop_schema(url, schema)


@pytest.fixture
def settings() -> Settings:
    """Test settings: no notifiers configured, short retry schedule."""
    return Settings.from_env(
        {
            "BOT_ENV": "test",
            "NOTIFY_MAX_ATTEMPTS": "3",
            "NOTIFY_BACKOFF_SECONDS": "60",
            "NOTIFY_BACKOFF_MAX_SECONDS": "600",
        }
    )


@pytest.fixture
def repo(database: Database, settings: Settings) -> Repository:
    """Repository on the test database."""
    return Repository(database, settings=settings)


@pytest.fixture
def booking_fields() -> Callable[..., dict[str, Any]]:
    """Return a factory of valid booking arguments; keyword overrides replace fields."""

    def make(**overrides: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "conversation_id": "conv-1",
            "idempotency_key": f"conv-1:{uuid.uuid4().hex}",
            "full_name": "Mary O'Neill",
            "phone_e164": "+441632960123",
            "email": "mary@example.org",
            "body_part": "left knee",
            "preferred_times": "Tuesday morning or Thursday after 3pm",
            "preferred_times_parsed": "2025-12-02T09:00:00+00:00",
            "description": "Knee pain for 3 weeks after running, worse on stairs.",
            "consent_given_at": datetime(2025, 11, 25, 10, 0, tzinfo=UTC),
            "channel": "web",
            "notify_channels": (),
        }
        fields.update(overrides)
        return fields

    return make


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A unique, not yet created PostgreSQL schema name, dropped after the test."""
    schema = f"t_{RUN_ID}_{next(_schema_numbers)}"
    yield schema
    drop_schema(postgres_url, schema)




@pytest.fixture()
def pg(postgres_url: str, postgres_schema: str, link: DatabaseLink, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated PostgreSQL schema the process uses (DATABASE_URL) through `link`."""
    upgrade(postgres_url, schema=postgres_schema)
    direct = f"{postgres_url}?options=-csearch_path%3D{postgres_schema}"
    monkeypatch.setenv("DATABASE_URL", link.url(direct))
    monkeypatch.setenv("SPOOL_FLUSH_SECONDS", "0.2")
    get_settings.cache_clear()
    return direct
