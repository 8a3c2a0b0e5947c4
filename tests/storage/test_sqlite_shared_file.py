"""The default SQLite file is shared by the Rasa server, the action server and the console.

In SQLite's default rollback-journal mode a commit waits until no other connection is
reading, and after the 5-second busy timeout fails with "database is locked": a booking
could be refused because the console was listing conversations. In write-ahead-log mode
(`bot.storage.database`) it commits at once while the reader goes on.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import text

from bot.storage.database import create_engine_for


def test_a_write_commits_while_another_process_is_reading(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    writer, console = create_engine_for(url), create_engine_for(url)
    try:
        with writer.begin() as conn:
            conn.execute(text("CREATE TABLE conversations (id INTEGER PRIMARY KEY, sender TEXT)"))
            conn.execute(text("CREATE TABLE bookings (id INTEGER PRIMARY KEY, name TEXT)"))
            for number in range(2000):
                conn.execute(text("INSERT INTO conversations (sender) VALUES (:s)"), {"s": f"web:{number}"})
        with console.connect() as reading:
            listing = reading.execute(text("SELECT id, sender FROM conversations ORDER BY id"))
            first_page = listing.fetchmany(50)  # the console is in the middle of its list
            started = time.monotonic()
            with writer.begin() as conn:
                conn.execute(text("INSERT INTO bookings (name) VALUES ('a patient')"))
            assert time.monotonic() - started < 2  # no wait for the reader (5 s, then "locked")
            assert len(first_page) + len(listing.fetchall()) == 2000
        with writer.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM bookings")).scalar() == 1
        with writer.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL: fsync per commit
    finally:
        writer.dispose()
        console.dispose()
