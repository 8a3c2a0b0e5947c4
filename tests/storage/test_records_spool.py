"""Records kept during an outage reach the database on their own, privately, per database.

The database goes away for real (a loopback link to PostgreSQL is cut), staff alerts reach
a real HTTP receiver, and the checks are rows in the tables and files on disk.
"""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest

from bot import records
from bot.settings import get_settings
from bot.storage.database import _databases
from bot.storage.migrate import upgrade
from tests.notify.conftest import WEBHOOK_SECRET, WebhookReceiver, free_port
from tests.standins.database_link import DatabaseLink
from tests.storage.outage import count, eventually


async def test_spooled_record_is_stored_without_another_record(pg: str, link: DatabaseLink) -> None:
    link.close()
    assert await records.save_feedback("web:r1", "sciatica", True, "thanks")
    assert records.spool_path().exists()
    link.open()
    await eventually(lambda: count(pg, "answer_feedback", "web:r1") == 1)
    await eventually(lambda: not records.spool_path().exists())


async def test_spooled_red_flag_alerts_staff_at_once(
    pg: str, link: DatabaseLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = WebhookReceiver(port=free_port())
    receiver.start()
    monkeypatch.setenv("NOTIFY_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("NOTIFY_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("SPOOL_FLUSH_SECONDS", "3600")
    get_settings.cache_clear()
    try:
        link.close()
        assert await records.save_red_flag("web:r2", ["cauda_equina"], "I can't pee since this morning")
        await eventually(lambda: receiver.requests)
        body = json.loads(receiver.requests[0].body)
        assert body["kind"] == "red_flag"
        assert "web:r2" in receiver.requests[0].body.decode()
        assert count(pg, "red_flag_alerts", "web:r2") == 0  # not stored yet: the alert did not wait
    finally:
        receiver.stop()


async def test_records_spool_is_private_and_tied_to_its_database(
    pg: str, link: DatabaseLink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPOOL_FLUSH_SECONDS", "3600")
    get_settings.cache_clear()
    link.close()
    assert await records.save_feedback("web:r3", "sciatica", False, "Mary, 07700 900123")
    spooled = records.spool_path()
    assert stat.S_IMODE(spooled.stat().st_mode) == 0o600
    assert stat.S_IMODE(spooled.parent.stat().st_mode) == 0o700

    sqlite_url = f"sqlite:///{tmp_path / 'other.db'}"
    upgrade(sqlite_url)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)  # as after a restart on another database
    get_settings.cache_clear()
    for database in _databases.values():
        database.dispose()
    _databases.clear()
    assert await records.save_feedback("web:lite", "sciatica", True)
    assert count(sqlite_url, "answer_feedback", "web:lite") == 1
    assert count(sqlite_url, "answer_feedback", "web:r3") == 0
    assert spooled.exists(), "the PostgreSQL record waits for PostgreSQL"


def test_corrupt_spooled_record_is_quarantined_and_the_others_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    upgrade(get_settings().database_url)
    path = records.spool_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    good = {"kind": "feedback", "kwargs": {"conversation_id": "web:r4", "topic": "sciatica", "helpful": True}}
    path.write_text('{"kind": "feedback", "kwargs": {"Mary\n' + json.dumps(good) + "\n", encoding="utf-8")
    assert records.flush_spool() == 1
    assert count(get_settings().database_url, "answer_feedback", "web:r4") == 1
    assert not path.exists()
    assert len(list(records.quarantine_dir().iterdir())) == 1
    assert "quarantined" in caplog.text and "Mary" not in caplog.text


async def test_silent_database_spools_the_record_within_seconds_and_stores_it_once(
    pg: str, link: DatabaseLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_OPERATION_TIMEOUT_SECONDS", "1")
    get_settings.cache_clear()
    assert await records.save_feedback("web:r5", "sciatica", True)  # the pool holds a connection now
    link.stall()
    started = time.monotonic()
    assert await records.save_feedback("web:r6", "sciatica", True)
    assert time.monotonic() - started < 3
    assert records.spool_path().exists()
    link.open()  # cuts the stalled connections: a late worker must not commit
    await eventually(lambda: count(pg, "answer_feedback", "web:r6") >= 1)
    await eventually(lambda: not records.spool_path().exists())
    assert count(pg, "answer_feedback", "web:r6") == 1


def test_make_run_stores_records_kept_during_an_earlier_outage(tmp_path: Path) -> None:
    from bot.run import store_spooled_records

    url = get_settings().database_url
    records._spool("feedback", {"conversation_id": "web:r7", "topic": "sciatica", "helpful": True})
    upgrade(url)  # the database is there at the next start
    store_spooled_records()
    assert count(url, "answer_feedback", "web:r7") == 1
    assert not records.spool_path().exists()
