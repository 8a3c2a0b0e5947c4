"""The console's queries on SQLite and PostgreSQL, and the create-user command."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from console_seed import seed_clinic

from bot.console import __main__ as cli
from bot.console import auth
from bot.settings import Settings
from bot.storage import console as store
from bot.storage.database import Database
from bot.storage.migrate import upgrade


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    upgrade(database_url)
    database = Database(database_url)
    yield database
    database.dispose()


def test_filters_and_inbox_on_each_backend(db: Database) -> None:
    ids = seed_clinic(db)
    def ids_of(**f: str) -> list[str]:
        return [r.conversation_id for r in store.list_conversations(db, store.ConversationFilter(**f)).rows]
    assert ids_of(flag="red_flag") == [ids["red"]]
    assert ids_of(topic="mri") == [ids["live"]]
    assert ids_of(text="bladder") == [ids["red"]]
    assert ids_of(text="100%") == []
    assert ids["xss"] in ids_of(channel="telegram")
    counts = store.inbox_counts(db)
    assert (counts.waiting, counts.callbacks, counts.bookings, counts.alerts) == (1, 1, 1, 2)
    assert [i.kind for i in store.inbox_items(db)] == ["waiting", "callback", "alert", "alert", "booking"]


def test_create_user_command_reads_the_password_from_stdin(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'clinic.db'}"
    upgrade(url)
    monkeypatch.setattr("sys.stdin", io.StringIO("a very long password\n"))
    assert cli.main(["create-user", "--role", "admin", "--username", "Ada", "--name", "Ada Lim",
                     "--password-file", "-"]) == 0
    db = Database(url)
    result = auth.log_in(db, Settings.from_env({"BOT_ENV": "test"}), "ada", "a very long password",
                         "127.0.0.1")
    assert result.token and result.user is not None and result.user.role == "admin"
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.main(["create-user", "--role", "admin", "--username", "bo", "--name", "Bo",
                     "--password-file", "-"]) == 2
    db.dispose()
