"""Fixtures for the staff console: a migrated database with sample data, served for real.

The helpers they use live in `console_support` (importable by the test modules; a module
named `conftest` would clash with other test folders' when the whole suite runs).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from console_seed import add_users, seed_clinic
from console_support import ConsoleServer, RecordingHandoff, console_settings, serve

from bot.console.app import create_app
from bot.storage.database import Database
from bot.storage.migrate import upgrade


@pytest.fixture
def console_db(tmp_path: Any) -> Iterator[Database]:
    """A migrated SQLite database."""
    url = f"sqlite:///{tmp_path / 'console.db'}"
    upgrade(url)
    db = Database(url)
    yield db
    db.dispose()


@pytest.fixture
def console(console_db: Database) -> Iterator[ConsoleServer]:
    """The console with sample data, served on a free port."""
    users = add_users(console_db)
    ids = seed_clinic(console_db)
    handoff = RecordingHandoff()
    url, stop = serve(create_app(console_db, settings=console_settings(), handoff=handoff))
    yield ConsoleServer(url, console_db, users, ids, handoff)
    stop()
