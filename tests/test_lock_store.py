"""Two Rasa servers sharing one conversation through `bot.lock_store`, on the real Redis.

Each "server" is a thread with its own event loop and its own Redis connection, as two
`rasa run` processes would have. A turn inside the lock does what Rasa's processor does to
the tracker: read every stored event, work, write them all back with one more. If two turns
ever overlapped, the later write would drop the earlier one's event; so every event being
stored exactly once, in ticket order, is what a patient would notice as "nothing I said was
lost".
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator, List

import pytest
import redis
from rasa.core.lock_store import LockStore
from rasa.utils.endpoints import read_endpoint_config

from bot.lock_store import AtomicRedisLockStore
from tests.standins.database_link import DatabaseLink

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SERVERS = 2
TURNS_PER_SERVER = 15


@pytest.fixture
def red() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    yield client
    client.close()


def run_server(name: str, conversation: str, prefix: str, turns: int, errors: List[BaseException]) -> None:
    """One Rasa server: `turns` messages for the same conversation, all in flight at once."""
    store = AtomicRedisLockStore(url=REDIS_URL, key_prefix=prefix)
    events_key = f"{prefix}:events:{conversation}"
    active_key = f"{prefix}:active:{conversation}"

    async def turn(index: int) -> None:
        async with store.lock(conversation, lock_lifetime=30, wait_time_in_seconds=0.005):
            if store.red.incr(active_key) != 1:
                raise AssertionError("two servers ran the same conversation at once")
            stored = store.red.lrange(events_key, 0, -1)  # the tracker, as read
            await asyncio.sleep(0.002)  # predicting, calling the action server
            pipe = store.red.pipeline()
            pipe.delete(events_key)
            pipe.rpush(events_key, *stored, f"{name}-{index}")  # the tracker, saved whole
            pipe.decr(active_key)
            pipe.execute()

    async def main() -> None:
        await asyncio.gather(*(turn(index) for index in range(turns)))

    try:
        asyncio.run(main())
    except BaseException as error:  # reported to the test thread
        errors.append(error)


def test_two_servers_on_one_conversation_lose_and_duplicate_no_event(red: redis.Redis) -> None:
    prefix = "t" + uuid.uuid4().hex[:12]
    conversation = "patient-" + uuid.uuid4().hex[:8]
    errors: List[BaseException] = []
    threads = [
        threading.Thread(target=run_server, args=(f"s{n}", conversation, prefix, TURNS_PER_SERVER, errors))
        for n in range(SERVERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    stored = [event.decode() for event in red.lrange(f"{prefix}:events:{conversation}", 0, -1)]
    expected = {f"s{n}-{i}" for n in range(SERVERS) for i in range(TURNS_PER_SERVER)}
    assert len(stored) == len(expected)
    assert set(stored) == expected
    # each server's messages were queued in the order it received them and stayed in it
    for n in range(SERVERS):
        mine = [int(event.split("-")[1]) for event in stored if event.startswith(f"s{n}-")]
        assert mine == sorted(mine)
    # the last ticket released takes the queue with it
    assert not red.exists(f"{prefix}:lock:{conversation}")
    red.delete(*(f"{prefix}:{key}:{conversation}" for key in ("events", "active")))
    red.delete(f"{prefix}:lock:{conversation}:last")


def test_ticket_of_a_server_that_died_only_blocks_until_it_expires(red: redis.Redis) -> None:
    prefix = "t" + uuid.uuid4().hex[:12]
    conversation = "patient-" + uuid.uuid4().hex[:8]
    dead = AtomicRedisLockStore(url=REDIS_URL, key_prefix=prefix)
    alive = AtomicRedisLockStore(url=REDIS_URL, key_prefix=prefix)
    dead.issue_ticket(conversation, lock_lifetime=1.0)  # taken, never released

    async def next_turn() -> float:
        start = time.monotonic()
        async with alive.lock(conversation, lock_lifetime=30, wait_time_in_seconds=0.05):
            return time.monotonic() - start

    waited = asyncio.run(next_turn())
    assert 0.5 <= waited < 10
    assert not red.exists(f"{prefix}:lock:{conversation}")
    red.delete(f"{prefix}:lock:{conversation}:last")


HOLD_AND_DIE = """
import asyncio, sys
from bot.lock_store import AtomicRedisLockStore

async def main():
    store = AtomicRedisLockStore(url=sys.argv[1], key_prefix=sys.argv[2], ticket_hold_seconds=2.0)
    async with store.lock(sys.argv[3], lock_lifetime=60):
        print("held", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_a_server_killed_mid_turn_blocks_its_conversation_for_the_hold_not_rasas_minute(
    red: redis.Redis,
) -> None:
    """A real process takes the lock with Rasa's 60 s lifetime, renews it, and is killed (SIGKILL)."""
    prefix = "t" + uuid.uuid4().hex[:12]
    conversation = "patient-" + uuid.uuid4().hex[:8]
    server = subprocess.Popen([sys.executable, "-c", HOLD_AND_DIE, REDIS_URL, prefix, conversation],
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent)
    try:
        assert server.stdout is not None and server.stdout.readline() == "held\n"
        alive = AtomicRedisLockStore(url=REDIS_URL, key_prefix=prefix)
        time.sleep(4.5)  # over two holds: only renewals keep its ticket alive this long
        held = alive.get_lock(conversation)  # expired tickets left out
        assert held is not None and held.now_serving == 1
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)

        async def next_turn() -> float:
            start = time.monotonic()
            async with alive.lock(conversation, lock_lifetime=60, wait_time_in_seconds=0.05):
                return time.monotonic() - start

        assert asyncio.run(next_turn()) < 15  # its ticket had 2 s left; Rasa's own store: up to 60 s
    finally:
        server.kill()
        red.delete(f"{prefix}:lock:{conversation}", f"{prefix}:lock:{conversation}:last")


def test_a_turn_slower_than_the_hold_keeps_its_lock_until_it_ends(red: redis.Redis) -> None:
    prefix = "t" + uuid.uuid4().hex[:12]
    conversation = "patient-" + uuid.uuid4().hex[:8]
    first, second = (AtomicRedisLockStore(url=REDIS_URL, key_prefix=prefix, ticket_hold_seconds=1.0)
                     for _ in range(2))
    order: List[str] = []

    async def slow_turn() -> None:
        async with first.lock(conversation, lock_lifetime=60, wait_time_in_seconds=0.05):
            order.append("slow turn starts")
            await asyncio.sleep(3.0)  # three holds long: a calendar or action server that is slow
            order.append("slow turn ends")

    async def next_turn() -> None:
        await asyncio.sleep(0.2)
        async with second.lock(conversation, lock_lifetime=60, wait_time_in_seconds=0.05):
            order.append("next turn starts")

    async def both() -> None:
        await asyncio.gather(slow_turn(), next_turn())

    try:
        asyncio.run(both())
        assert order == ["slow turn starts", "slow turn ends", "next turn starts"]
        assert not red.exists(f"{prefix}:lock:{conversation}")
    finally:
        red.delete(f"{prefix}:lock:{conversation}", f"{prefix}:lock:{conversation}:last")


def test_tickets_are_numbered_once_across_servers(red: redis.Redis) -> None:
    prefix = "t" + uuid.uuid4().hex[:12]
    conversation = "patient-" + uuid.uuid4().hex[:8]
    first, second = (AtomicRedisLockStore(url=REDIS_URL, key_prefix=prefix) for _ in range(2))
    numbers = [store.issue_ticket(conversation, 30) for store in (first, second, first, second)]
    assert numbers == [1, 2, 3, 4]
    lock = second.get_lock(conversation)
    assert lock is not None and lock.now_serving == 1 and lock.is_locked(2)
    first.cleanup(conversation, 1)
    lock = first.get_lock(conversation)
    assert lock is not None and not lock.is_locked(2)
    second.delete_lock(conversation)
    assert first.get_lock(conversation) is None


def test_rasa_builds_it_from_endpoints_yml(tmp_path: Path) -> None:
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        "lock_store:\n"
        "  type: bot.lock_store.AtomicRedisLockStore\n"
        f"  url: {REDIS_URL}\n"
        "  key_prefix: clinictest\n"
    )
    store = LockStore.create(read_endpoint_config(str(endpoints), "lock_store"))
    assert isinstance(store, AtomicRedisLockStore)
    assert store.key_prefix == "clinictest:lock:"
    assert store.red.ping()


def test_turns_are_still_served_one_at_a_time_while_redis_is_down(red: redis.Redis) -> None:
    """Redis stopped: every turn is still served, one at a time; then Redis serves again.

    A relay in front of the real Redis refuses connections, as a stopped Redis does.
    """
    relay = DatabaseLink(target_port=6379)  # the same cuttable loopback link, to Redis
    relay.open()
    db = REDIS_URL.rsplit("/", 1)[1]
    prefix = "t" + uuid.uuid4().hex[:12]
    conversation = "patient-" + uuid.uuid4().hex[:8]
    store = AtomicRedisLockStore(url=f"redis://127.0.0.1:{relay.port}/{db}", key_prefix=prefix,
                                 retry_redis_after=0.3)
    queue = f"{prefix}:lock:{conversation}"
    served: List[int] = []
    active = 0

    async def turn(index: int) -> bool:
        nonlocal active
        async with store.lock(conversation, lock_lifetime=30, wait_time_in_seconds=0.005):
            active += 1
            assert active == 1, "two turns of one conversation at once"
            in_redis = bool(red.exists(queue))
            await asyncio.sleep(0.002)
            served.append(index)
            active -= 1
            return in_redis

    async def turns(count: int) -> List[bool]:
        return list(await asyncio.gather(*(turn(i) for i in range(count))))

    try:
        assert all(asyncio.run(turns(3)))  # locked in Redis
        relay.close()
        assert not any(asyncio.run(turns(10)))  # Redis down: in memory, still one at a time
        assert store.down and len(served) == 13
        relay.open()
        time.sleep(0.5)
        assert all(asyncio.run(turns(3)))  # back in Redis
        assert not store.down and len(served) == 16
    finally:
        relay.close()
        red.delete(queue, f"{queue}:last")
