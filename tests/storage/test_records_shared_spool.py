"""Records kept during an outage are stored by whichever action server is running.

With several action servers, one that kept a booking while PostgreSQL was away may never
come back (killed, its machine replaced). With SPOOL_REDIS_URL set the records wait in one
Redis queue (the real Redis, its test database) and real `rasa run actions` processes,
started afterwards with their own data folders, store them: each exactly once, in order.
The database goes away for real (a loopback link to PostgreSQL is cut); the checks are rows
in the tables, the queue in Redis and the files on disk.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography.fernet import Fernet

from bot import records, spool
from bot.settings import get_settings
from bot.shared_records import KEY_PREFIX
from tests.conftest import BIN, ROOT, free_port, wait_http
from tests.standins.database_link import DatabaseLink
from tests.storage.outage import count, eventually

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SPOOL_KEY = Fernet.generate_key().decode()


@pytest.fixture()
def shared(pg: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[redis.Redis]:
    """This process is an action server whose records go to the shared queue in Redis.

    Its own timer waits an hour, as if it had been killed right after keeping them.
    """
    monkeypatch.setenv("SPOOL_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("SPOOL_KEY", SPOOL_KEY)
    monkeypatch.setenv("SPOOL_FLUSH_SECONDS", "3600")
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path / "first-server"))
    get_settings.cache_clear()
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    for key in client.scan_iter(f"{KEY_PREFIX}{queue_namespace()}:*"):
        client.delete(key)
    client.close()


@pytest.fixture(autouse=True)
async def no_timer_left() -> Any:
    """The test's own action-server timer stops with the test's event loop."""
    yield
    await records.stop_flushing()


def queue_namespace() -> str:
    return f"records:{spool.database_folder(get_settings().database_url)}"


def queued(client: redis.Redis) -> int:
    """Records waiting in the shared queue of this test's database."""
    return int(client.llen(f"{KEY_PREFIX}{queue_namespace()}:pending"))


def start_action_server(tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    """A real `rasa run actions` on the same database and Redis, with its own data folder."""
    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=get_settings().database_url,
        SPOOL_REDIS_URL=REDIS_URL,
        SPOOL_KEY=SPOOL_KEY,
        SPOOL_FLUSH_SECONDS="0.5",
        BOT_DATA_DIR=str(tmp_path / name),
        SANIC_HOST="127.0.0.1",
    )
    log = tmp_path / f"{name}.log"
    proc = subprocess.Popen(
        [str(BIN / "rasa"), "run", "actions", "--actions", "actions", "-p", str(port)],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    wait_http(f"http://127.0.0.1:{port}/health", proc=proc)
    return proc


async def keep_while_down(booking_fields: Callable[..., dict[str, Any]], patients: int) -> list[str]:
    """Each patient books, asks for a person and rates an answer while the database is away."""
    conversations = [f"web:shared-{n}" for n in range(patients)]
    for conversation in conversations:
        fields = booking_fields(conversation_id=conversation, idempotency_key=f"{conversation}:k")
        fields.pop("notify_channels")
        assert await records.save_booking(**fields) == records.SPOOLED
        assert await records.save_handoff(conversation_id=conversation, reason="asked for a person",
                                          within_hours=True) == records.SPOOLED
        assert await records.save_feedback(conversation, "sciatica", True)
    return conversations


async def test_records_kept_by_a_server_that_never_returns_are_stored_once_by_the_others(
    shared: redis.Redis, pg: str, link: DatabaseLink, tmp_path: Path,
    booking_fields: Callable[..., dict[str, Any]],
) -> None:
    link.close()
    conversations = await keep_while_down(booking_fields, patients=25)
    assert queued(shared) == 75
    assert not records.spool_path().exists(), "nothing waits on the first server's disk"

    # two servers, both trying every half second, race for the queue once the database is back
    servers = [start_action_server(tmp_path, name) for name in ("second-server", "third-server")]
    try:
        link.open()
        await eventually(lambda: queued(shared) == 0, timeout=60)
    finally:
        for proc in servers:
            proc.terminate()
        for proc in servers:
            proc.wait(20)
    for conversation in conversations:
        assert count(pg, "booking_requests", conversation) == 1
        assert count(pg, "handoff_requests", conversation) == 1
        assert count(pg, "answer_feedback", conversation) == 1


async def test_a_running_server_stores_what_another_kept_without_being_restarted(
    shared: redis.Redis, pg: str, link: DatabaseLink, tmp_path: Path,
    booking_fields: Callable[..., dict[str, Any]],
) -> None:
    server = start_action_server(tmp_path, "second-server")  # started before the outage
    try:
        link.close()
        [conversation] = await keep_while_down(booking_fields, patients=1)
        link.open()
        await eventually(lambda: count(pg, "booking_requests", conversation) == 1, timeout=30)
        await eventually(lambda: queued(shared) == 0)
    finally:
        server.terminate()
        server.wait(20)
    assert count(pg, "handoff_requests", conversation) == 1


async def test_an_unreadable_queued_record_is_quarantined_and_the_ones_after_it_stored(
    shared: redis.Redis, pg: str, link: DatabaseLink, caplog: pytest.LogCaptureFixture,
) -> None:
    link.close()
    shared.rpush(f"{KEY_PREFIX}{queue_namespace()}:pending", b'{"kind": "feedback", "kwargs": {"Mary')
    assert await records.save_feedback("web:after-bad", "sciatica", True, "Mary, 07700 900123")
    link.open()
    records.start_flushing(now=True)
    await eventually(lambda: queued(shared) == 0)
    assert count(pg, "answer_feedback", "web:after-bad") == 1
    assert len((records.quarantine_dir() / "records.jsonl").read_bytes().splitlines()) == 1
    assert "Mary" not in caplog.text


async def test_with_redis_away_too_the_record_waits_on_disk_and_is_stored(
    pg: str, link: DatabaseLink, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SPOOL_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    get_settings.cache_clear()
    link.close()
    assert await records.save_feedback("web:no-redis", "sciatica", True)
    assert records.spool_path().exists()
    link.open()
    await eventually(lambda: count(pg, "answer_feedback", "web:no-redis") == 1)
    await eventually(lambda: not records.spool_path().exists())
