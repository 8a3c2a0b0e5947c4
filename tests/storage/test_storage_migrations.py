"""The migration builds the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from bot.storage.database import Database
from bot.storage.migrate import alembic_config, downgrade, upgrade
from bot.storage.models import Base

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TABLES = {
    "booking_requests",
    "handoff_requests",
    "red_flag_alerts",
    "answer_feedback",
    "notification_outbox",
    "seen_channel_messages",
    "staff_users",
    "staff_sessions",
    "audit_log",
    "conversation_summaries",
    "conversation_notes",
    "status_history",
    "red_flag_alert_flags",
    "nlu_corrections",
}


def test_upgrade_creates_every_table_at_head(database: Database) -> None:
    with database.engine.connect() as connection:
        names = set(inspect(connection).get_table_names())
        version = connection.execute(
            text("SELECT version_num FROM alembic_version")
        ).scalar()
    assert TABLES | {"alembic_version"} <= names
    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_migration_matches_models(database: Database) -> None:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_upgrade_twice_is_harmless_and_downgrade_removes_tables(
    database: Database,
) -> None:
    schema = database.schema
    upgrade(database.url, schema=schema)
    downgrade(database.url, schema=schema)
    with database.engine.connect() as connection:
        assert not TABLES & set(inspect(connection).get_table_names())
    upgrade(database.url, schema=schema)
    with database.engine.connect() as connection:
        assert TABLES <= set(inspect(connection).get_table_names())


def test_postgres_schema_isolates_a_run(
    postgres_url: str, postgres_schema: str
) -> None:
    schema = postgres_schema
    upgrade(postgres_url, schema=schema)
    db = Database(postgres_url, schema=schema)
    try:
        with db.engine.connect() as connection:
            assert connection.execute(text("SHOW search_path")).scalar() == schema
            schemas = (
                connection.execute(
                    text(
                        "SELECT table_schema FROM information_schema.tables "
                        "WHERE table_name = 'booking_requests' "
                        "AND table_schema = :schema"
                    ),
                    {"schema": schema},
                )
                .scalars()
                .all()
            )
        assert schemas == [schema]
    finally:
        db.dispose()


def test_upgrade_does_not_depend_on_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'elsewhere' / 'clinic.db'}"
    upgrade(url)
    db = Database(url)
    with db.engine.connect() as connection:
        assert TABLES <= set(inspect(connection).get_table_names())
    db.dispose()


def test_setup_command_migrates_the_database_from_settings(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.storage.migrate"],
        cwd=PROJECT_ROOT,
        env={
            "PATH": os.environ.get("PATH", ""),
            "BOT_ENV": "test",
            "BOT_DATA_DIR": str(tmp_path / "data"),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    db = Database(f"sqlite:///{tmp_path / 'data' / 'clinic.db'}")
    with db.engine.connect() as connection:
        assert TABLES <= set(inspect(connection).get_table_names())
    db.dispose()


def test_alerts_stored_before_tiers_existed_become_emergencies(database: Database) -> None:
    schema = database.schema
    downgrade(database.url, schema=schema, revision="0001_initial")
    with database.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO red_flag_alerts (conversation_id, flags, message_excerpt, created_at) "
            "VALUES ('web:old', 'bladder_bowel', 'old alert', CURRENT_TIMESTAMP)"
        ))
    upgrade(database.url, schema=schema)
    with database.engine.connect() as connection:
        row = connection.execute(text("SELECT tier, categories FROM red_flag_alerts")).one()
    assert tuple(row) == ("emergency", "back_knee")
