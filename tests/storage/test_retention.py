"""Retention and "forget this patient": nothing of that patient is left anywhere, others untouched.

Real databases (SQLite and PostgreSQL), Rasa's own `events` table written by the tracker
store, real spool files; every table is queried afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot import spool
from bot.channels.store import RedisStore
from bot.settings import get_settings
from bot.shared_records import SharedRecords
from bot.shared_spool import KEY_PREFIX as SHARED_PREFIX
from bot.shared_spool import SharedSpool
from bot.storage.database import Database
from bot.storage.models import UTC, ConversationNote, NluCorrection, StatusChange, utcnow
from bot.storage.repository import Repository
from bot.storage.retention import PLACES, forget, main, purge
from bot.storage.summaries import refresh
from bot.tracker_store import ClinicTrackerStore
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]

A, B = "web:patientaaa", "web:patientbbb"
PHONE_A, PHONE_B = "+6591111111", "+6592222222"
TABLES = {
    "events": "sender_id",
    "conversation_summaries": "conversation_id",
    "conversation_notes": "conversation_id",
    "nlu_corrections": "conversation_id",
    "booking_requests": "conversation_id",
    "handoff_requests": "conversation_id",
    "red_flag_alerts": "conversation_id",
    "answer_feedback": "conversation_id",
}


def store_url(database: Database) -> str:
    if database.schema:
        return f"{database.url}?options=-csearch_path%3D{database.schema}"
    return database.url


def rows_of(database: Database, who: str, phone: str) -> dict[str, int]:
    """Every place where this patient could be, and how many rows/files of them are there."""
    found: dict[str, int] = {}
    with database.session_scope() as session:
        for table, column in TABLES.items():
            found[table] = int(session.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE {column} = :w"), {"w": who}).scalar_one())
        found["red_flag_alert_flags"] = int(session.execute(sa.text(
            "SELECT count(*) FROM red_flag_alert_flags f JOIN red_flag_alerts a ON a.id = f.alert_id "
            "WHERE a.conversation_id = :w"), {"w": who}).scalar_one())
        orphans = int(session.execute(sa.text(
            "SELECT count(*) FROM red_flag_alert_flags WHERE alert_id NOT IN (SELECT id FROM red_flag_alerts)"
        )).scalar_one())
        found["orphan_flags"] = orphans
        payloads = list(session.execute(sa.text("SELECT payload FROM notification_outbox")).scalars())
        found["outbox_payloads"] = sum(1 for p in payloads if who in p or phone in p)
        found["status_history"] = int(session.execute(sa.text(
            "SELECT count(*) FROM status_history WHERE note = :w"), {"w": who}).scalar_one())
    root = get_settings().data_dir / "spool"
    files = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    found["spool_files"] = sum(1 for p in files if p.stem == spool.reference(who))
    found["spool_records"] = sum(
        1 for p in files if p.suffix == ".jsonl"
        for line in p.read_bytes().splitlines() if line.strip() and who in spool.unseal(line)
    )
    return found


def nothing(found: dict[str, int]) -> bool:
    return all(count == 0 for count in found.values())


@pytest.fixture()
def seeded(database: Database, booking_fields: Callable[..., dict[str, Any]]) -> Database:
    """Two patients with data in every place."""
    store = ClinicTrackerStore(domain=Domain.empty(), url=store_url(database))
    repo = Repository(database)
    for who, phone in ((A, PHONE_A), (B, PHONE_B)):
        tracker = DialogueStateTracker.from_events(
            who, [ActionExecuted("action_listen"), UserUttered(f"my knee, {who}")], []
        )
        store._save_sync(tracker, __import__("threading").Event())
        booking = repo.create_booking_request(**booking_fields(
            conversation_id=who, phone_e164=phone, idempotency_key=f"{who}:1", notify_channels=("email",)))
        handoff = repo.create_handoff(
            conversation_id=who, reason="call me", within_hours=False, callback_requested=True,
            contact_phone=phone, contact_consented=True, notify_channels=("webhook",))
        repo.record_red_flag(conversation_id=who, flags=["saddle_numbness", "leg_weakness"], message=who,
                             notify_channels=("email",))
        repo.record_feedback(conversation_id=who, topic="sciatica", helpful=False, comment=who)
        with database.session_scope() as session:
            refresh(session, who, frozenset())
            session.add(ConversationNote(conversation_id=who, author_name="Kim", body=who))
            session.add(NluCorrection(conversation_id=who, message_timestamp="1", text=who, created_by_name="Kim"))
            for kind, ref in (("booking", booking.id), ("handoff", handoff.id)):
                session.add(StatusChange(kind=kind, ref_id=ref, to_status="contacted", by_name="Kim", note=who))
        folder = get_settings().data_dir / "spool" / "trackers" / "somedb"
        spool.write_private(folder / f"{spool.reference(who)}.json", spool.seal(json.dumps({"sender_id": who})))
        records = get_settings().data_dir / "spool" / "records" / "somedb" / "pending.jsonl"
        line = json.dumps({"kind": "feedback", "kwargs": {"conversation_id": who, "topic": "x", "comment": who}})
        spool.append_private(records, spool.seal(line) + b"\n")
    store.engine.dispose()
    return database


def test_every_place_is_seeded(seeded: Database) -> None:
    found = rows_of(seeded, A, PHONE_A)
    assert all(found[place] >= 1 for place in found if place != "orphan_flags"), found


def test_forget_by_phone_leaves_nothing_of_that_patient(seeded: Database) -> None:
    before_b = rows_of(seeded, B, PHONE_B)

    report = forget(phone=PHONE_A, database=seeded)

    assert nothing(rows_of(seeded, A, PHONE_A))
    assert rows_of(seeded, B, PHONE_B) == before_b
    assert report.conversations == 1
    assert report.deleted["booking_requests"] == 1 and report.deleted["red_flag_alert_flags"] == 2
    assert report.deleted["events"] == 2 and report.deleted["spool_files"] == 1
    assert report.deleted["spool_records"] == 1 and report.deleted["notification_outbox"] == 3
    assert set(report.deleted) == set(PLACES)


def test_forget_by_conversation_id(seeded: Database) -> None:
    forget(conversation_id=B, database=seeded)
    assert nothing(rows_of(seeded, B, PHONE_B))
    assert rows_of(seeded, A, PHONE_A)["booking_requests"] == 1


def make_old(database: Database, who: str, days: int = 400) -> None:
    """The patient's conversation and requests as if they were `days` old."""
    old = utcnow() - timedelta(days=days)
    with database.session_scope() as session:
        session.execute(sa.text("UPDATE events SET timestamp = :t WHERE sender_id = :w"),
                        {"t": old.timestamp(), "w": who})
        for table in ("booking_requests", "handoff_requests", "red_flag_alerts", "answer_feedback"):
            session.execute(sa.text(f"UPDATE {table} SET created_at = :t WHERE conversation_id = :w"),
                            {"t": old if database.engine.dialect.name != "sqlite" else old.replace(tzinfo=None),
                             "w": who})


def test_purge_deletes_what_is_older_than_the_limit_only(seeded: Database) -> None:
    make_old(seeded, A)
    before_b = rows_of(seeded, B, PHONE_B)

    report = purge(365, database=seeded, now=datetime.now(UTC))

    assert report.conversations == 1
    found = rows_of(seeded, A, PHONE_A)
    assert nothing(found), found
    assert rows_of(seeded, B, PHONE_B) == before_b


def test_command_prints_the_report(
    seeded: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", store_url(seeded))
    get_settings.cache_clear()
    from bot.storage.database import _databases

    _databases.clear()
    assert main(["forget", "--phone", PHONE_A]) == 0
    out = capsys.readouterr().out
    assert "forget: 1 conversation(s)" in out and "  booking_requests: 1" in out
    assert main(["purge", "--days", "30"]) == 0
    assert "purge: 0 conversation(s)" in capsys.readouterr().out


def wait_until_forgotten(database: Database, who: str, phone: str, process: subprocess.Popen[str]) -> None:
    """Wait (up to a minute) for the running service to delete everything of this patient."""
    deadline = time.monotonic() + 60
    while not nothing(rows_of(database, who, phone)):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, rows_of(database, who, phone)
        time.sleep(0.2)


def test_the_retention_service_purges_again_at_each_interval(seeded: Database) -> None:
    """`purge --every` (compose, systemd, make run) deletes what grows old while it runs."""
    env = dict(os.environ, DATABASE_URL=store_url(seeded))
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.storage.retention", "purge", "--days", "365", "--every", "1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        make_old(seeded, A)
        wait_until_forgotten(seeded, A, PHONE_A, process)
        assert rows_of(seeded, B, PHONE_B)["booking_requests"] == 1  # B is recent: kept
        make_old(seeded, B)  # B grows old later: the next run deletes B too
        wait_until_forgotten(seeded, B, PHONE_B, process)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert "purge: 1 conversation(s)" in output


def test_the_retention_service_keeps_running_while_the_database_is_away() -> None:
    """A failed run is reported and tried again at the next interval; the service does not exit."""
    env = dict(os.environ, DATABASE_URL=f"postgresql://nobody@127.0.0.1:{free_port()}/clinic")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.storage.retention", "purge", "--every", "1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout or []], daemon=True).start()
    try:
        first, second = lines.get(timeout=60), lines.get(timeout=60)  # the second: the next interval
        for line in (first, second):
            assert line.startswith("retention: purge failed (DatabaseUnavailable"), line
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=30)


SHARED_REDIS = "redis://127.0.0.1:6379/14"


def test_forget_deletes_the_patients_copies_and_records_kept_in_redis(
    seeded: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With several servers, conversations (bot.shared_spool) and records (bot.shared_records) wait in Redis."""
    monkeypatch.setenv("SPOOL_REDIS_URL", SHARED_REDIS)
    get_settings.cache_clear()
    shared = SharedSpool.from_settings(get_settings(), store_url(seeded))
    assert shared is not None

    queue = SharedRecords(RedisStore(SHARED_REDIS, SHARED_PREFIX), store_url(seeded))

    async def keep_copies() -> None:
        for who, phone in ((A, PHONE_A), (B, PHONE_B)):
            events = [UserUttered(f"my knee, {who}", timestamp=1.0).as_dict()]
            await shared.put(who, events)  # spooled during an outage
            await shared.remember(who, events)  # the latest stored copy
            for kwargs in ({"conversation_id": who, "comment": who}, {"phone_e164": phone}):
                await queue.keep(spool.seal(json.dumps({"kind": "feedback", "kwargs": kwargs})))
        await shared.close()
        await queue.store.close()

    asyncio.run(keep_copies())
    client = redis.Redis.from_url(SHARED_REDIS)
    try:
        def copies(who: str) -> list[bytes]:
            return [k for k in client.scan_iter(f"{SHARED_PREFIX}*") if k.endswith(spool.reference(who).encode())]

        def records() -> list[bytes]:
            return client.lrange(f"{SHARED_PREFIX}{queue.namespace}:pending", 0, -1)

        assert len(copies(A)) == 2 and len(copies(B)) == 2 and len(records()) == 4
        report = forget(phone=PHONE_A, database=seeded)
        assert copies(A) == [] and len(copies(B)) == 2
        left = [json.loads(spool.unseal(line))["kwargs"] for line in records()]
        assert left == [{"conversation_id": B, "comment": B}, {"phone_e164": PHONE_B}]  # in order
        assert report.deleted["shared_copies"] == 2 and report.unreached == []
        assert report.deleted["spool_records"] == 1 + 2  # the disk spool's line and the queue's two
        assert not client.exists(f"{SHARED_PREFIX}{queue.namespace}:lock")  # let go of
    finally:
        for key in client.scan_iter(f"{SHARED_PREFIX}*"):
            client.delete(key)
        client.close()


def test_forget_says_when_redis_could_not_be_checked(seeded: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOOL_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    get_settings.cache_clear()
    report = forget(conversation_id=A, database=seeded)
    assert nothing(rows_of(seeded, A, PHONE_A))  # the rest is still deleted
    assert any(line.startswith("  NOT CHECKED: copies and records kept in Redis") for line in report.lines())


def test_forget_waits_for_an_action_server_storing_the_records_queue(
    seeded: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server storing the queue removes lines by position: forget must not move them under it."""
    monkeypatch.setenv("SPOOL_REDIS_URL", SHARED_REDIS)
    get_settings.cache_clear()
    queue = SharedRecords(RedisStore(SHARED_REDIS, SHARED_PREFIX), store_url(seeded))
    pending, lock = (f"{SHARED_PREFIX}{queue.namespace}:{name}" for name in ("pending", "lock"))
    client = redis.Redis.from_url(SHARED_REDIS)
    try:
        client.rpush(pending, spool.seal(json.dumps({"kind": "feedback", "kwargs": {"conversation_id": A}})))
        client.set(lock, "another-server", px=60_000)
        removed = threading.Event()
        forgetting = threading.Thread(target=lambda: (forget(conversation_id=A, database=seeded), removed.set()))
        forgetting.start()
        assert not removed.wait(1.0)  # it waits for the lock ...
        assert client.llen(pending) == 1  # ... and touches nothing meanwhile
        client.delete(lock)  # the server has finished its round
        assert removed.wait(30)
        forgetting.join()
        assert client.llen(pending) == 0 and not client.exists(lock)
    finally:
        for key in client.scan_iter(f"{SHARED_PREFIX}*"):
            client.delete(key)
        client.close()
