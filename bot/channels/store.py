"""Where the messaging channels remember things between webhook calls: one interface, two backends.

Telegram, WhatsApp and Twilio each keep short-lived memories: the platform message ids
already handled (a webhook is redelivered, perhaps to another process), the buttons last
sent to a patient (so that a typed "2" picks one) and, for Telegram and WhatsApp, the long
button payloads behind the short ids their button data carries (so a press answered by
another process still sends the payload). `MemoryStore` keeps them in this process,
in cachetools' `TLRUCache` (bounded in size, each entry with its own lifetime); it is the
default and needs no server.
`RedisStore` keeps them in Redis when `CHANNEL_CACHE_URL` (else `REDIS_URL`) is set, so every
Rasa process behind a load balancer sees the same memory: an update redelivered to process B
is still a duplicate, and a "2" that process B receives resolves against the buttons that
process A sent.

`ChannelCache` is what a channel holds: one namespace, one lifetime, hashed keys. A key is
`<CHANNEL_CACHE_PREFIX><namespace>:<HMAC-SHA256 of the platform id>`, keyed with the channel's
own secret, so chat ids, phone numbers and message ids never appear in Redis. Every entry
expires. A store that cannot be reached raises `StoreUnavailable`; the callers log it and go
on as if nothing were remembered, so a patient's message is never dropped over a cache.

The outage spools use the same Redis access (`bot.shared_spool` for conversations,
`bot.shared_records` for the action servers' records): the records queue is a list that does
not expire, since it holds bookings until the database has them.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import hmac
import time
import weakref
from collections.abc import Callable

from cachetools import TLRUCache
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from bot.settings import Settings, get_settings

DEFAULT_MAX_ENTRIES = 10_000
"""Entries per namespace the in-process store keeps (the oldest go first)."""

REDIS_TIMEOUT_SECONDS = 1.0
"""Connect and command timeout: a stalled Redis must not hold up a webhook."""

_HASH_CHARS = 32


class StoreUnavailable(RuntimeError):
    """The store could not be reached; nothing was read or written."""


class ChannelStore(abc.ABC):
    """Short-lived keyed memory shared by whoever holds the same store."""

    @abc.abstractmethod
    async def claim(self, namespace: str, key: str, ttl_seconds: float, value: str = "1") -> bool:
        """Record `key` as `value`; True only for the first claim within `ttl_seconds` (atomic)."""

    @abc.abstractmethod
    async def renew(self, namespace: str, key: str, value: str, ttl_seconds: float) -> bool:
        """Give `key` a new lifetime if it still holds `value` (atomic); False if it does not."""

    @abc.abstractmethod
    async def release(self, namespace: str, key: str, value: str) -> bool:
        """Remove `key` if it still holds `value` (atomic); False if it does not."""

    @abc.abstractmethod
    async def put(self, namespace: str, key: str, value: str, ttl_seconds: float) -> None:
        """Store `value` under `key` for `ttl_seconds`, replacing an earlier one."""

    @abc.abstractmethod
    async def get(self, namespace: str, key: str) -> str | None:
        """The value under `key`, left in place (None if absent or expired)."""

    @abc.abstractmethod
    async def take(self, namespace: str, key: str) -> str | None:
        """Remove and return the value under `key` (None if absent or expired), atomically."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections made in the running loop."""


class MemoryStore(ChannelStore):
    """This process only: one `TLRUCache` per namespace, bounded in entries, each entry aging alone."""

    def __init__(
        self, max_entries: int = DEFAULT_MAX_ENTRIES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Create empty caches of at most `max_entries` each; `clock` is injectable for tests."""
        self._max_entries = max_entries
        self._clock = clock
        self._caches: dict[str, TLRUCache[str, tuple[str, float]]] = {}

    def _cache(self, namespace: str) -> TLRUCache[str, tuple[str, float]]:
        cache = self._caches.get(namespace)
        if cache is None:
            cache = TLRUCache(maxsize=self._max_entries, ttu=_expires, timer=self._clock)
            self._caches[namespace] = cache
        return cache

    def _value(self, namespace: str, key: str) -> str | None:
        entry = self._cache(namespace).get(key)
        return None if entry is None else entry[0]

    async def claim(self, namespace: str, key: str, ttl_seconds: float, value: str = "1") -> bool:
        """Record `key`; False if it is already there and not expired."""
        cache = self._cache(namespace)
        if key in cache:
            return False
        cache[key] = (value, ttl_seconds)
        return True

    async def renew(self, namespace: str, key: str, value: str, ttl_seconds: float) -> bool:
        """Store `value` again for `ttl_seconds` if it is still the value held."""
        if self._value(namespace, key) != value:
            return False
        self._cache(namespace)[key] = (value, ttl_seconds)
        return True

    async def release(self, namespace: str, key: str, value: str) -> bool:
        """Remove `key` if it still holds `value`."""
        if self._value(namespace, key) != value:
            return False
        self._cache(namespace).pop(key, None)
        return True

    async def put(self, namespace: str, key: str, value: str, ttl_seconds: float) -> None:
        """Store `value` for `ttl_seconds`."""
        self._cache(namespace)[key] = (value, ttl_seconds)

    async def get(self, namespace: str, key: str) -> str | None:
        """The value (None if absent or expired)."""
        return self._value(namespace, key)

    async def take(self, namespace: str, key: str) -> str | None:
        """Remove and return the value (None if absent or expired)."""
        entry = self._cache(namespace).pop(key, None)
        return None if entry is None else entry[0]

    async def close(self) -> None:
        """Nothing to release: the entries stay for the next loop of this process."""


def _expires(_key: str, entry: tuple[str, float], now: float) -> float:
    """`TLRUCache`'s time to use: each entry keeps the lifetime it was stored with."""
    return now + entry[1]


class RedisStore(ChannelStore):
    """Redis, shared by every process with the same URL and prefix.

    `SET NX PX` claims, `SET PX` stores, `GET` reads and `GETDEL` takes (Redis 6.2 or
    later), each one atomic command. The asyncio client is bound to the loop that made it, so there is one
    per running loop, made on first use (Rasa builds channels before its loop runs).
    """

    def __init__(self, url: str, prefix: str, timeout_seconds: float = REDIS_TIMEOUT_SECONDS) -> None:
        """Prepare a client for `url`; nothing connects until the first command."""
        self.url = url
        self.prefix = prefix
        self._timeout = timeout_seconds
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
            weakref.WeakKeyDictionary()
        )

    def key(self, namespace: str, key: str) -> str:
        """The Redis key of `key` in `namespace` (with the prefix)."""
        return f"{self.prefix}{namespace}:{key}"

    def _client(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = aioredis.Redis.from_url(
                self.url,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
            )
            self._clients[loop] = client
        return client

    async def claim(self, namespace: str, key: str, ttl_seconds: float, value: str = "1") -> bool:
        """`SET key value NX PX ttl`: True if this call created the key."""
        try:
            created = await self._client().set(
                self.key(namespace, key), value.encode("utf-8"), nx=True, px=_milliseconds(ttl_seconds)
            )
        except (RedisError, OSError) as error:
            raise StoreUnavailable(f"Redis: {type(error).__name__}: {error}") from None
        return bool(created)

    async def renew(self, namespace: str, key: str, value: str, ttl_seconds: float) -> bool:
        """`PEXPIRE key ttl` if `GET key` is `value`, in one script."""
        return await self._if_holds(_RENEW, namespace, key, value, _milliseconds(ttl_seconds))

    async def release(self, namespace: str, key: str, value: str) -> bool:
        """`DEL key` if `GET key` is `value`, in one script."""
        return await self._if_holds(RELEASE_IF_HELD, namespace, key, value)

    async def _if_holds(self, script: str, namespace: str, key: str, value: str, *args: int) -> bool:
        try:
            done = await self._client().eval(script, 1, self.key(namespace, key), value.encode("utf-8"), *args)
        except (RedisError, OSError) as error:
            raise StoreUnavailable(f"Redis: {type(error).__name__}: {error}") from None
        return bool(done)

    async def put(self, namespace: str, key: str, value: str, ttl_seconds: float) -> None:
        """`SET key value PX ttl`."""
        try:
            await self._client().set(
                self.key(namespace, key), value.encode("utf-8"), px=_milliseconds(ttl_seconds)
            )
        except (RedisError, OSError) as error:
            raise StoreUnavailable(f"Redis: {type(error).__name__}: {error}") from None

    async def get(self, namespace: str, key: str) -> str | None:
        """`GET key`."""
        try:
            value = await self._client().get(self.key(namespace, key))
        except (RedisError, OSError) as error:
            raise StoreUnavailable(f"Redis: {type(error).__name__}: {error}") from None
        return None if value is None else bytes(value).decode("utf-8")

    async def take(self, namespace: str, key: str) -> str | None:
        """`GETDEL key`."""
        try:
            value = await self._client().getdel(self.key(namespace, key))
        except (RedisError, OSError) as error:
            raise StoreUnavailable(f"Redis: {type(error).__name__}: {error}") from None
        return None if value is None else bytes(value).decode("utf-8")

    async def push(self, namespace: str, key: str, value: bytes) -> None:
        """`RPUSH key value`: append to a list (a queue shared by every process)."""
        try:
            await self._client().rpush(self.key(namespace, key), value)
        except (RedisError, OSError) as error:
            raise StoreUnavailable(f"Redis: {type(error).__name__}: {error}") from None

    async def head(self, namespace: str, key: str, count: int) -> list[bytes]:
        """`LRANGE key 0 count-1`: the oldest `count` items of a list, left in place."""
        try:
            items = await self._client().lrange(self.key(namespace, key), 0, count - 1)
        except (RedisError, OSError) as error:
            raise StoreUnavailable(f"Redis: {type(error).__name__}: {error}") from None
        return [bytes(item) for item in items]

    async def length(self, namespace: str, key: str) -> int:
        """`LLEN key`."""
        try:
            return int(await self._client().llen(self.key(namespace, key)))
        except (RedisError, OSError) as error:
            raise StoreUnavailable(f"Redis: {type(error).__name__}: {error}") from None

    async def drop_head(self, namespace: str, key: str, count: int, lock: str, holder: str) -> bool:
        """`LTRIM key count -1` if `GET lock` (same namespace) is `holder`, in one script.

        Only the holder of the lock removes what it has dealt with, so a process whose lock
        expired mid-way cannot remove items another process now works on.
        """
        try:
            done = await self._client().eval(
                _DROP_HEAD, 2, self.key(namespace, lock), self.key(namespace, key),
                holder.encode("utf-8"), count,
            )
        except (RedisError, OSError) as error:
            raise StoreUnavailable(f"Redis: {type(error).__name__}: {error}") from None
        return bool(done)

    async def close(self) -> None:
        """Close the running loop's client and its connections."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.close(close_connection_pool=True)


# KEYS: the key. ARGV: the value it must hold, then (renew) the new lifetime in ms.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
RELEASE_IF_HELD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: the lock, the list. ARGV: the lock's holder, how many items to drop from the head.
_DROP_HEAD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('LTRIM', KEYS[2], ARGV[2], -1) return 1 end
return 0
"""


def _milliseconds(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def channel_store(settings: Settings | None = None) -> ChannelStore:
    """The store settings ask for: Redis with `CHANNEL_CACHE_URL`/`REDIS_URL`, else in-process."""
    settings = settings or get_settings()
    if settings.channel_cache_url:
        return RedisStore(settings.channel_cache_url, settings.channel_cache_prefix)
    return MemoryStore()


class ChannelCache:
    """One kind of memory of one channel: a namespace, a lifetime and hashed keys."""

    def __init__(self, store: ChannelStore, namespace: str, ttl_seconds: float, secret: str) -> None:
        """Keep entries of `namespace` for `ttl_seconds`, keys hashed with `secret`.

        Args:
            store: Where entries live (`channel_store()`).
            namespace: E.g. `whatsapp:buttons`; distinct per channel and kind.
            ttl_seconds: Lifetime of every entry.
            secret: HMAC key for the ids (the channel's own secret, the same in every
                process of one deployment, so processes agree on keys).
        """
        self.store = store
        self.namespace = namespace
        self.ttl_seconds = ttl_seconds
        self._secret = secret.encode("utf-8")

    def hashed(self, key: str) -> str:
        """The id as stored: HMAC-SHA256 with the channel's secret, shortened."""
        digest = hmac.new(self._secret, key.encode("utf-8"), hashlib.sha256).hexdigest()
        return digest[:_HASH_CHARS]

    async def claim(self, key: str, value: str = "1", ttl_seconds: float | None = None) -> bool:
        """True the first time `key` is claimed within the lifetime (or `ttl_seconds`).

        Raises:
            StoreUnavailable: The store could not be reached.
        """
        ttl = self.ttl_seconds if ttl_seconds is None else ttl_seconds
        return await self.store.claim(self.namespace, self.hashed(key), ttl, value)

    async def renew(self, key: str, value: str, ttl_seconds: float) -> bool:
        """Keep `key` for `ttl_seconds` more if it still holds `value`.

        Raises:
            StoreUnavailable: The store could not be reached.
        """
        return await self.store.renew(self.namespace, self.hashed(key), value, ttl_seconds)

    async def release(self, key: str, value: str) -> bool:
        """Forget `key` if it still holds `value`.

        Raises:
            StoreUnavailable: The store could not be reached.
        """
        return await self.store.release(self.namespace, self.hashed(key), value)

    async def put(self, key: str, value: str) -> None:
        """Store `value` under `key`.

        Raises:
            StoreUnavailable: The store could not be reached.
        """
        await self.store.put(self.namespace, self.hashed(key), value, self.ttl_seconds)

    async def get(self, key: str) -> str | None:
        """The value under `key`, left in place for the next reader.

        Raises:
            StoreUnavailable: The store could not be reached.
        """
        return await self.store.get(self.namespace, self.hashed(key))

    async def take(self, key: str) -> str | None:
        """Remove and return the value under `key`.

        Raises:
            StoreUnavailable: The store could not be reached.
        """
        return await self.store.take(self.namespace, self.hashed(key))
