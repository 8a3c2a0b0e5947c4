"""The conversation store on a real PostgreSQL (and SQLite): bad records, stalls, spools.

Faults are real: a loopback link to PostgreSQL is cut or stalled (`DatabaseLink`), ids
that PostgreSQL rejects are sent as they would arrive from a channel, and staff alerts
reach a real HTTP receiver. What is checked is what someone would notice: rows in the
`events` table, files in the spool, lines in the log, requests at the receiver.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import List, Tuple

import pytest
import redis
import sqlalchemy as sa
from cryptography.fernet import Fernet
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.settings import get_settings
from bot.shared_spool import KEY_PREFIX
from bot.tracker_store import ClinicTrackerStore, ConversationStoreUnavailable, check_reachable
from tests.conftest import free_port
from tests.notify.conftest import WEBHOOK_SECRET, WebhookReceiver
from tests.standins.database_link import DatabaseLink, SilentListener
from tests.storage.outage import eventually

DOMAIN = Domain.empty()


def conversation(sender_id: str, *texts: str) -> DialogueStateTracker:
    """A conversation in which the patient said `texts`."""
    events: List = [ActionExecuted("action_listen")]
    for text in texts:
        events += [UserUttered(text), ActionExecuted("action_listen")]
    return DialogueStateTracker.from_events(sender_id, events, [])


def user_texts(url: str, sender_id: str) -> List[str]:
    """What the patient said in this conversation, as stored in the `events` table."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("events"):
                return []
            rows = connection.execute(
                sa.text(
                    "SELECT data FROM events WHERE sender_id = :s AND type_name = 'user' ORDER BY id"
                ),
                {"s": sender_id},
            )
            return [json.loads(row[0])["text"] for row in rows]
    finally:
        engine.dispose()


def spool_files(store: ClinicTrackerStore) -> List[Path]:
    """Conversations waiting in the store's spool (quarantine excluded)."""
    if not store.spool_dir.exists():
        return []
    return sorted(p for p in store.spool_dir.iterdir() if p.is_file())


@pytest.fixture()
def staff_webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    """Staff alerts go to a real HTTP receiver on loopback."""
    from tests.conftest import free_port

    receiver = WebhookReceiver(port=free_port())
    receiver.start()
    monkeypatch.setenv("NOTIFY_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("NOTIFY_WEBHOOK_SECRET", WEBHOOK_SECRET)
    get_settings.cache_clear()
    yield receiver
    receiver.stop()


@pytest.fixture()
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Set environment variables read by `bot.settings` for this test."""

    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    return set_env


async def test_nul_in_sender_id_is_a_bad_record_not_an_exit(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = ClinicTrackerStore(domain=DOMAIN, url=postgres_url)
    bad = "web:\x00"
    try:
        assert await store.retrieve(bad) is None  # PostgreSQL refuses the string: no exit
        await store.save(conversation(bad, "my number is 07700 900123"))
        kept = await store.retrieve(bad)
        assert kept is not None, "the conversation goes on in memory"
        assert [e.text for e in kept.events if isinstance(e, UserUttered)] == ["my number is 07700 900123"]
        assert store.degraded_since is None, "one bad record is not an outage"
        await store.save(conversation("web:fine", "hello"))
        assert user_texts(postgres_url, "web:fine") == ["hello"]
        assert spool_files(store) == []
        assert "bad record" in caplog.text
        assert "07700" not in caplog.text and "\x00" not in caplog.text
    finally:
        await store.close()


async def test_overlong_sender_id_is_quarantined_and_the_others_are_stored(
    postgres_url: str,
    link: DatabaseLink,
    staff_webhook: WebhookReceiver,
    settings_env: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings_env(SPOOL_FLUSH_SECONDS="3600")  # only the restart replays in this test
    url = link.url(postgres_url)
    long_id = "web:" + "x" * 300
    store = ClinicTrackerStore(domain=DOMAIN, url=url)
    link.close()
    await store.save(conversation(long_id, "I am Mary"))
    await store.save(conversation("web:after", "hello"))
    assert len(spool_files(store)) == 2
    await store.close()

    link.open()
    restarted = ClinicTrackerStore(domain=DOMAIN, url=url)
    try:
        await restarted.save(conversation("web:later", "hi"))
        assert user_texts(postgres_url, "web:after") == ["hello"]
        assert user_texts(postgres_url, "web:later") == ["hi"]
        assert spool_files(restarted) == []
        assert len(list(restarted.quarantine_dir.iterdir())) == 1
        await eventually(lambda: any(b"quarantined" in r.body for r in staff_webhook.requests))
        assert "quarantined" in caplog.text
        assert "xxxxxxxxxx" not in caplog.text and "Mary" not in caplog.text
    finally:
        await restarted.close()


async def test_stalled_database_degrades_within_seconds_and_the_loop_stays_free(
    postgres_url: str, link: DatabaseLink, settings_env: Callable[..., None]
) -> None:
    settings_env(DB_OPERATION_TIMEOUT_SECONDS="2", SPOOL_FLUSH_SECONDS="3600")
    store = ClinicTrackerStore(domain=DOMAIN, url=link.url(postgres_url))
    await store.save(conversation("web:before", "hello"))
    assert user_texts(postgres_url, "web:before") == ["hello"]

    link.stall()
    rescue = threading.Timer(15, link.open)  # bounds the test if the save blocks the loop
    rescue.start()
    try:
        started = time.monotonic()
        save = asyncio.ensure_future(store.save(conversation("web:during", "are you there?")))
        turns = 0
        while not save.done():
            await asyncio.sleep(0.05)
            turns += 1
        await save
        elapsed = time.monotonic() - started
    finally:
        rescue.cancel()
    try:
        assert elapsed < 5, f"a stalled database held the save for {elapsed:.1f} s"
        assert turns >= 10, "the event loop was blocked while the database hung"
        assert store.degraded_since is not None
        assert len(spool_files(store)) == 1
        again = await asyncio.wait_for(store.retrieve("web:during"), 5)
        assert again is not None and again.latest_message.text == "are you there?"

        link.open()  # the database answers again
        await store.flush_pending()
        assert user_texts(postgres_url, "web:during") == ["are you there?"]
        assert store.degraded_since is None
    finally:
        await store.close()


def test_start_up_refuses_a_silent_database_within_seconds(settings_env: Callable[..., None]) -> None:
    settings_env(DB_CONNECT_TIMEOUT_SECONDS="1")
    silent = SilentListener()
    started = time.monotonic()
    try:
        with pytest.raises(ConversationStoreUnavailable):
            check_reachable(f"postgresql://postgres@127.0.0.1:{silent.port}/test")
    finally:
        silent.close()
    assert time.monotonic() - started < 10


async def test_conversation_spooled_for_postgres_is_never_replayed_into_sqlite(
    postgres_url: str, link: DatabaseLink, tmp_path: Path, settings_env: Callable[..., None]
) -> None:
    settings_env(SPOOL_FLUSH_SECONDS="3600")
    url = link.url(postgres_url)
    store = ClinicTrackerStore(domain=DOMAIN, url=url)
    link.close()
    await store.save(conversation("web:pg-only", "hello"))
    await store.close()

    sqlite_url = f"sqlite:///{tmp_path / 'other.db'}"
    other = ClinicTrackerStore(domain=DOMAIN, url=sqlite_url)
    await other.save(conversation("web:lite", "hi"))
    assert await other.retrieve("web:pg-only") is None
    assert user_texts(sqlite_url, "web:pg-only") == []
    assert user_texts(sqlite_url, "web:lite") == ["hi"]
    await other.close()

    link.open()
    restarted = ClinicTrackerStore(domain=DOMAIN, url=url)
    await restarted.close()
    assert user_texts(postgres_url, "web:pg-only") == ["hello"]


async def test_spooled_conversation_is_stored_without_another_message(
    postgres_url: str, link: DatabaseLink, settings_env: Callable[..., None]
) -> None:
    settings_env(SPOOL_FLUSH_SECONDS="0.2")
    store = ClinicTrackerStore(domain=DOMAIN, url=link.url(postgres_url))
    try:
        link.close()
        await store.save(conversation("web:timer", "hello"))
        assert len(spool_files(store)) == 1
        link.open()
        await eventually(lambda: user_texts(postgres_url, "web:timer") == ["hello"])
        await eventually(lambda: spool_files(store) == [])
    finally:
        await store.close()


async def test_similar_sender_ids_get_their_own_private_spool_files(
    postgres_url: str, link: DatabaseLink, settings_env: Callable[..., None]
) -> None:
    settings_env(SPOOL_FLUSH_SECONDS="3600")
    store = ClinicTrackerStore(domain=DOMAIN, url=link.url(postgres_url))
    try:
        link.close()
        await store.save(conversation("web:collide1", "first"))
        await store.save(conversation("web_collide1", "second"))
        files = spool_files(store)
        assert len(files) == 2
        assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
        assert stat.S_IMODE(store.spool_dir.stat().st_mode) == 0o700

        link.open()
        await store.flush_pending()
        assert user_texts(postgres_url, "web:collide1") == ["first"]
        assert user_texts(postgres_url, "web_collide1") == ["second"]
        assert spool_files(store) == []
    finally:
        await store.close()


async def test_spooled_conversation_is_encrypted_with_the_spool_key(
    postgres_url: str, link: DatabaseLink, settings_env: Callable[..., None]
) -> None:
    settings_env(SPOOL_KEY=Fernet.generate_key().decode(), SPOOL_FLUSH_SECONDS="3600")
    url = link.url(postgres_url)
    store = ClinicTrackerStore(domain=DOMAIN, url=url)
    link.close()
    await store.save(conversation("web:secret", "I am Mary O'Neill, 07700 900123"))
    (spooled,) = spool_files(store)
    raw = spooled.read_bytes()
    assert b"Mary" not in raw and b"07700" not in raw and b"web:secret" not in raw
    await store.close()

    link.open()
    restarted = ClinicTrackerStore(domain=DOMAIN, url=url)
    await restarted.close()
    assert user_texts(postgres_url, "web:secret") == ["I am Mary O'Neill, 07700 900123"]


async def test_a_turn_answered_from_memory_during_an_outage_is_stored_after_the_other_servers_turn(
    postgres_url: str, link: DatabaseLink, settings_env: Callable[..., None]
) -> None:
    """Two Rasa servers: A, cut off from the database, answers from its older copy of the conversation."""
    settings_env(SPOOL_FLUSH_SECONDS="0.2")
    server_a = ClinicTrackerStore(domain=DOMAIN, url=link.url(postgres_url))
    server_b = ClinicTrackerStore(domain=DOMAIN, url=postgres_url)
    sender = "rest:two-servers"
    try:
        await server_a.save(conversation(sender, "hello", "what is sciatica"))
        on_b = await server_b.retrieve(sender)
        assert on_b is not None
        on_b.update(UserUttered("and my knee?"))
        on_b.update(ActionExecuted("action_listen"))
        await server_b.save(on_b)

        link.close()
        on_a = await server_a.retrieve(sender)  # from memory: without "and my knee?"
        assert on_a is not None and len(on_a.events) == len(on_b.events) - 2
        on_a.update(UserUttered("book me in"))
        on_a.update(ActionExecuted("action_listen"))
        await server_a.save(on_a)
        assert len(spool_files(server_a)) == 1
        link.open()
        await eventually(lambda: spool_files(server_a) == [])
        assert user_texts(postgres_url, sender) == ["hello", "what is sciatica", "and my knee?", "book me in"]
        listens = [e for e in (await server_b.retrieve(sender)).events if isinstance(e, ActionExecuted)]
        assert len(listens) == 5, "no event stored twice"
    finally:
        await server_a.close()
        await server_b.close()


# -- several Rasa servers sharing what they spool (bot.shared_spool, on the real Redis) ----------

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture()
def shared_redis(settings_env: Callable[..., None]) -> Iterator[None]:
    """Servers share spooled conversations through the real Redis (its test database)."""
    settings_env(SPOOL_REDIS_URL=REDIS_URL, SPOOL_FLUSH_SECONDS="3600", SPOOL_KEY=Fernet.generate_key().decode())
    yield
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{KEY_PREFIX}*"):
        client.delete(key)
    client.close()


def shared_copies(store: ClinicTrackerStore, latest_stored: bool = False) -> List[bytes]:
    """What Redis holds for the store's database: one value per conversation spooled (or stored)."""
    assert store.shared is not None
    namespace = store.shared.recent_namespace if latest_stored else store.shared.namespace
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return [client.get(key) for key in client.scan_iter(f"{KEY_PREFIX}{namespace}:*")]
    finally:
        client.close()


async def next_turn(server: ClinicTrackerStore, sender: str, text: str) -> DialogueStateTracker:
    """One server answers the patient's next message: retrieve, the patient's turn, save."""
    tracker = await server.retrieve(sender)
    assert tracker is not None
    tracker.update(UserUttered(text))
    tracker.update(ActionExecuted("action_listen"))
    await server.save(tracker)
    return tracker


def said(tracker: DialogueStateTracker) -> List[str]:
    return [event.text for event in tracker.events if isinstance(event, UserUttered)]


@pytest.fixture()
async def two_servers(
    postgres_url: str, link: DatabaseLink, shared_redis: None
) -> AsyncIterator[Tuple[ClinicTrackerStore, ClinicTrackerStore]]:
    """Two Rasa servers' conversation stores on the same (cuttable) database and Redis."""
    server_a = ClinicTrackerStore(domain=DOMAIN, url=link.url(postgres_url))
    server_b = ClinicTrackerStore(domain=DOMAIN, url=link.url(postgres_url))
    yield server_a, server_b
    await server_a.close()
    await server_b.close()


async def test_during_an_outage_the_next_server_continues_the_turn_the_other_server_spooled(
    postgres_url: str, link: DatabaseLink, two_servers: Tuple[ClinicTrackerStore, ClinicTrackerStore]
) -> None:
    """Both servers cut off: B answers the patient's next message with A's turn in its context."""
    server_a, server_b = two_servers
    sender = f"rest:shared-{uuid.uuid4().hex[:6]}"
    await server_a.save(conversation(sender, "hello"))
    assert await server_b.retrieve(sender) is not None  # B has served this patient too

    link.close()
    await next_turn(server_a, sender, "what is sciatica")  # spooled on A's disk and shared
    (copy,) = shared_copies(server_a)
    assert b"sciatica" not in copy and sender.encode() not in copy  # sealed with SPOOL_KEY

    on_b = await next_turn(server_b, sender, "tell me more")
    assert said(on_b) == ["hello", "what is sciatica", "tell me more"]

    on_a = await server_a.retrieve(sender)  # A's own spooled copy is older than B's
    assert on_a is not None and said(on_a)[-1] == "tell me more"

    link.open()
    await server_a.flush_pending()  # A first: its older copy must not put its turn last
    await server_b.flush_pending()
    assert user_texts(postgres_url, sender) == ["hello", "what is sciatica", "tell me more"]
    assert spool_files(server_a) == [] and spool_files(server_b) == []
    assert shared_copies(server_a) == []  # stored, so no longer shared


async def test_the_first_message_of_an_outage_is_answered_with_the_turn_the_other_server_stored(
    postgres_url: str, link: DatabaseLink, two_servers: Tuple[ClinicTrackerStore, ClinicTrackerStore]
) -> None:
    """B answered "hello", A answered and stored the next turn, then the database goes away."""
    server_a, server_b = two_servers
    sender = f"rest:first-{uuid.uuid4().hex[:6]}"
    await server_b.save(conversation(sender, "hello"))  # B keeps this copy in its memory
    await next_turn(server_a, sender, "what is sciatica")  # stored: nothing was spooled
    assert shared_copies(server_a) == []
    (copy,) = shared_copies(server_a, latest_stored=True)
    assert b"sciatica" not in copy and sender.encode() not in copy  # sealed with SPOOL_KEY

    link.close()
    on_b = await next_turn(server_b, sender, "tell me more")
    assert said(on_b) == ["hello", "what is sciatica", "tell me more"]

    link.open()
    await server_b.flush_pending()
    assert user_texts(postgres_url, sender) == ["hello", "what is sciatica", "tell me more"]


async def test_during_an_outage_a_server_that_never_saw_the_patient_continues_the_stored_conversation(
    postgres_url: str, link: DatabaseLink, two_servers: Tuple[ClinicTrackerStore, ClinicTrackerStore]
) -> None:
    server_a, server_b = two_servers
    sender = f"rest:new-{uuid.uuid4().hex[:6]}"
    await server_a.save(conversation(sender, "my knee clicks"))
    link.close()
    on_b = await next_turn(server_b, sender, "is that bad")
    assert said(on_b) == ["my knee clicks", "is that bad"]
    link.open()
    await server_b.flush_pending()
    assert user_texts(postgres_url, sender) == ["my knee clicks", "is that bad"]


async def test_a_conversation_spooled_by_a_server_that_died_is_continued_and_stored_by_another(
    postgres_url: str, link: DatabaseLink, two_servers: Tuple[ClinicTrackerStore, ClinicTrackerStore]
) -> None:
    """A spools a turn and is killed; the database comes back; B answers the patient's next message."""
    server_a, server_b = two_servers
    sender = f"rest:orphan-{uuid.uuid4().hex[:6]}"
    await server_a.save(conversation(sender, "hello"))
    link.close()
    await next_turn(server_a, sender, "my knee clicks")
    await server_a.close()  # killed: its spool timer never runs again
    link.open()
    assert user_texts(postgres_url, sender) == ["hello"]

    await next_turn(server_b, sender, "what can i do")  # the database answers, but A's copy is newer
    assert user_texts(postgres_url, sender) == ["hello", "my knee clicks", "what can i do"]
    assert shared_copies(server_b) == []


async def test_with_redis_away_a_server_keeps_answering_from_its_own_spool(
    postgres_url: str, link: DatabaseLink, settings_env: Callable[..., None]
) -> None:
    settings_env(SPOOL_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", SPOOL_FLUSH_SECONDS="3600")
    store = ClinicTrackerStore(domain=DOMAIN, url=link.url(postgres_url))
    sender = f"rest:no-redis-{uuid.uuid4().hex[:6]}"
    try:
        link.close()
        await store.save(conversation(sender, "hello"))  # nothing listens on the Redis port
        again = await store.retrieve(sender)
        assert again is not None and [e.text for e in again.events if isinstance(e, UserUttered)] == ["hello"]
        link.open()
        await store.flush_pending()
        assert user_texts(postgres_url, sender) == ["hello"]
    finally:
        await store.close()
