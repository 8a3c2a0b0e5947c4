"""`.env` in the project folder is read by every entry point; the environment wins over it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.settings import get_settings, load_env_file

ROOT = Path(__file__).resolve().parent.parent


def test_env_file_fills_only_variables_that_are_not_set(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\nNOTIFY_EMAIL_TO=from-dotenv\nRASA_AUTH_TOKEN='quoted value'\nSMTP_HOST=dotenv-host\n"
        "SMTP_PASSWORD=pa$word${HOME}\n",
        encoding="utf-8",
    )
    environ = {"SMTP_HOST": "shell-host"}
    added = load_env_file(env_file, environ)
    assert environ["SMTP_HOST"] == "shell-host"  # already set: kept
    assert environ["NOTIFY_EMAIL_TO"] == "from-dotenv"
    assert environ["RASA_AUTH_TOKEN"] == "quoted value"
    assert environ["SMTP_PASSWORD"] == "pa$word${HOME}"  # taken literally, like systemd's EnvironmentFile
    assert "SMTP_HOST" not in added
    assert load_env_file(tmp_path / "missing.env", environ) == {}


def test_get_settings_reads_the_project_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("NOTIFY_EMAIL_TO=reception-from-dotenv@clinic.test\n", encoding="utf-8")
    monkeypatch.setattr("bot.settings.ENV_FILE", env_file)
    monkeypatch.delenv("NOTIFY_EMAIL_TO", raising=False)
    get_settings.cache_clear()
    assert get_settings().notify_email_to == "reception-from-dotenv@clinic.test"
    monkeypatch.delenv("NOTIFY_EMAIL_TO")  # load_env_file put it in os.environ


def _project_copy(tmp_path: Path) -> Path:
    """The project's code in a folder of its own, so its .env is the test's, not a developer's."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "bot", project / "bot", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "alembic.ini", project / "alembic.ini")
    return project


def _env_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}


def test_migrate_creates_the_tables_in_the_database_named_only_in_env(
    tmp_path: Path, postgres_url: str
) -> None:
    project = _project_copy(tmp_path)
    (project / ".env").write_text(f"DATABASE_URL={postgres_url}\n", encoding="utf-8")
    subprocess.run(
        [sys.executable, "-m", "bot.storage.migrate"],
        cwd=project, env=_env_without("DATABASE_URL", "BOT_DATA_DIR"), check=True, timeout=120,
    )
    engine = sa.create_engine(postgres_url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"booking_requests", "handoff_requests", "staff_users", "alembic_version"} <= tables
    assert not (project / "var").exists()  # not the SQLite default


def test_a_database_url_in_the_environment_wins_over_env(tmp_path: Path, postgres_url: str) -> None:
    project = _project_copy(tmp_path)
    (project / ".env").write_text(f"DATABASE_URL={postgres_url}\n", encoding="utf-8")
    chosen = tmp_path / "chosen.db"
    subprocess.run(
        [sys.executable, "-m", "bot.storage.migrate"],
        cwd=project, env={**_env_without("BOT_DATA_DIR"), "DATABASE_URL": f"sqlite:///{chosen}"},
        check=True, timeout=120,
    )
    engine = sa.create_engine(f"sqlite:///{chosen}")
    try:
        assert "booking_requests" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
    engine = sa.create_engine(postgres_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
