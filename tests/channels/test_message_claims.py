"""Widget message ids across servers: a re-send is a duplicate only once the message was answered.

Each test runs twice: on the in-process store, and on the real Redis at 127.0.0.1 (db 14, a
fresh key prefix, removed afterwards) with two stores standing for two Rasa servers. A
server that died mid-answer is what it leaves behind: its claim in the store, no longer
renewed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis

from bot.channels.claims import Claim, MessageClaims
from bot.channels.store import ChannelCache, ChannelStore, MemoryStore, RedisStore

REDIS_URL = "redis://127.0.0.1:6379/14"
LEASE = 0.6
NAMESPACE = "socketio:message-ids"


@pytest.fixture(params=["memory", "redis"])
async def servers(request: pytest.FixtureRequest) -> AsyncIterator[tuple[MessageClaims, MessageClaims]]:
    """Two servers' claims on one store (one process's memory, or one Redis)."""
    prefix = f"test-claims-{uuid.uuid4().hex[:12]}:"
    stores: list[ChannelStore]
    if request.param == "memory":
        shared = MemoryStore()
        stores = [shared, shared]
    else:
        stores = [RedisStore(REDIS_URL, prefix), RedisStore(REDIS_URL, prefix)]
    claims = [MessageClaims(ChannelCache(store, NAMESPACE, 3600, ""), lease_seconds=LEASE) for store in stores]
    yield claims[0], claims[1]
    for store in stores:
        await store.close()
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


async def state_on(claims: MessageClaims, key: str) -> Claim:
    """What a re-send of `key` would be told right now (it is answered at once if claimed)."""
    async with claims.handling(key) as claim:
        return claim


async def test_an_answered_message_is_a_duplicate_on_every_server(
    servers: tuple[MessageClaims, MessageClaims],
) -> None:
    a, b = servers
    async with a.handling("web:s|m1") as claim:
        assert claim is Claim.ANSWER
    assert await state_on(b, "web:s|m1") is Claim.DUPLICATE
    assert await state_on(a, "web:s|m1") is Claim.DUPLICATE
    assert await state_on(b, "web:s|m2") is Claim.ANSWER  # another message of the same patient


async def test_a_message_being_answered_is_in_progress_for_longer_than_one_lease(
    servers: tuple[MessageClaims, MessageClaims],
) -> None:
    a, b = servers
    async with a.handling("web:s|slow") as claim:
        assert claim is Claim.ANSWER
        started = time.monotonic()
        while time.monotonic() - started < 3 * LEASE:  # the answering server renews its lease
            assert await state_on(b, "web:s|slow") is Claim.IN_PROGRESS
            await asyncio.sleep(LEASE / 4)
    assert await state_on(b, "web:s|slow") is Claim.DUPLICATE


async def test_the_message_of_a_server_that_died_mid_answer_is_answered_once_its_lease_lapses(
    servers: tuple[MessageClaims, MessageClaims],
) -> None:
    a, b = servers
    dead = ChannelCache(a.cache.store, NAMESPACE, 3600, "")
    assert await dead.claim("web:s|lost", "claim:dead-server", LEASE)  # claimed, never renewed
    assert await state_on(b, "web:s|lost") is Claim.IN_PROGRESS
    deadline = time.monotonic() + 10 * LEASE
    while (claim := await state_on(b, "web:s|lost")) is Claim.IN_PROGRESS:
        assert time.monotonic() < deadline, "the dead server's claim never lapsed"
        await asyncio.sleep(LEASE / 4)
    assert claim is Claim.ANSWER
    assert await state_on(a, "web:s|lost") is Claim.DUPLICATE


async def test_a_message_whose_answer_failed_can_be_answered_at_once(
    servers: tuple[MessageClaims, MessageClaims],
) -> None:
    a, b = servers
    with pytest.raises(RuntimeError):
        async with a.handling("web:s|failed") as claim:
            assert claim is Claim.ANSWER
            raise RuntimeError("Rasa failed on this message")
    assert await state_on(b, "web:s|failed") is Claim.ANSWER


async def test_ids_remembered_before_claims_had_leases_stay_duplicates(
    servers: tuple[MessageClaims, MessageClaims],
) -> None:
    a, b = servers
    assert await a.cache.claim("web:s|old")  # the earlier code stored "1" on arrival
    assert await state_on(b, "web:s|old") is Claim.DUPLICATE


async def test_with_the_store_unreachable_the_message_is_answered() -> None:
    claims = MessageClaims(ChannelCache(RedisStore("redis://127.0.0.1:9/0", "x:"), NAMESPACE, 3600, ""))
    async with claims.handling("web:s|m") as claim:
        assert claim is Claim.ANSWER
