"""Which widget conversations have a browser connected, answered alike by every Rasa server.

Staff replies go out only when a browser is connected to the conversation
(`bot.handoff.reachability` asks the socket.io channel's presence route). A Rasa server knows
only its own sockets: python-socketio's room lists stay per process even with its Redis
manager, which shares emits, not membership. With `SOCKETIO_REDIS_URL` (else `REDIS_URL`)
each server also records its sockets in Redis, so the server the console asks can answer
for a browser connected to another one.

One sorted set per conversation, `<CHANNEL_CACHE_PREFIX>socketio:presence:<SHA-256 of the
conversation id>` (no session ids in Redis), whose members are `<server id>:<socket id>`
scored with the wall-clock time they stop counting. A server renews its members every
third of `PRESENCE_TTL_SECONDS` and removes one when its socket leaves or disconnects, so
the sockets of a server that died stop counting within `PRESENCE_TTL_SECONDS`. Redis
errors are logged and never reach the patient: the presence route then answers from the
server's own sockets, as without Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
import weakref
from collections.abc import Callable, Iterable

from redis import asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

PRESENCE_TTL_SECONDS = 60.0
"""How long a socket counts as connected after its server last renewed it."""

REDIS_TIMEOUT_SECONDS = 1.0
"""Connect and command timeout: a stalled Redis must not hold up the widget or the console."""

_HASH_CHARS = 32


class SharedPresence:
    """This server's widget sockets, recorded in Redis next to every other server's."""

    def __init__(
        self,
        url: str,
        prefix: str,
        ttl_seconds: float = PRESENCE_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
        server_id: str | None = None,
    ) -> None:
        """Prepare for `url`; nothing connects until the first socket joins or a question comes.

        Args:
            url: Redis URL (`SOCKETIO_REDIS_URL`).
            prefix: Key prefix (`CHANNEL_CACHE_PREFIX`), the same on every server.
            ttl_seconds: How long a socket counts without being renewed.
            clock: Wall-clock seconds, shared by all servers (injectable for tests).
            server_id: This server's name in the members (default: a random one).
        """
        self.url = url
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.server_id = server_id or uuid.uuid4().hex
        self._clock = clock
        self._sockets: dict[str, str] = {}
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
            weakref.WeakKeyDictionary()
        )
        self._renewal: asyncio.Task[None] | None = None

    def key(self, conversation_id: str) -> str:
        """The Redis key of a conversation's sockets."""
        digest = hashlib.sha256(conversation_id.encode("utf-8")).hexdigest()[:_HASH_CHARS]
        return f"{self.prefix}socketio:presence:{digest}"

    def _member(self, sid: str) -> str:
        return f"{self.server_id}:{sid}"

    def _client(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = aioredis.Redis.from_url(
                self.url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
            )
            self._clients[loop] = client
        return client

    async def joined(self, sid: str, conversation_id: str) -> None:
        """Socket `sid` of this server is now in `conversation_id` (and out of any earlier one)."""
        previous = self._sockets.get(sid)
        self._sockets[sid] = conversation_id
        self._keep_renewing()
        if previous is not None and previous != conversation_id:
            await self._remove(sid, previous)
        await self._record([(sid, conversation_id)])

    async def left(self, sid: str) -> None:
        """Socket `sid` disconnected: it no longer counts anywhere."""
        conversation_id = self._sockets.pop(sid, None)
        if conversation_id is not None:
            await self._remove(sid, conversation_id)

    async def connected(self, conversation_id: str) -> bool | None:
        """Whether any server has a live socket in the conversation; None if Redis did not answer."""
        try:
            count = await self._client().zcount(self.key(conversation_id), f"({self._clock()}", "+inf")
        except (RedisError, OSError) as error:
            logger.warning("Could not ask Redis who is connected (%s); answering for this server only", error)
            return None
        return int(count) > 0

    async def _record(self, sockets: Iterable[tuple[str, str]]) -> None:
        """Add (or renew) sockets, each counting for `ttl_seconds` from now."""
        now = self._clock()
        pipe = self._client().pipeline(transaction=False)
        for sid, conversation_id in sockets:
            key = self.key(conversation_id)
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zadd(key, {self._member(sid): now + self.ttl_seconds})
            pipe.pexpire(key, max(1, int(self.ttl_seconds * 1000)))
        try:
            await pipe.execute()
        except (RedisError, OSError) as error:
            logger.warning("Could not record widget presence in Redis (%s)", error)

    async def _remove(self, sid: str, conversation_id: str) -> None:
        try:
            await self._client().zrem(self.key(conversation_id), self._member(sid))
        except (RedisError, OSError) as error:
            logger.warning("Could not clear widget presence in Redis (%s); it expires on its own", error)

    def _keep_renewing(self) -> None:
        """Start the renewal loop in the running loop, once."""
        loop = asyncio.get_running_loop()
        task = self._renewal
        if task is None or task.done() or task.get_loop() is not loop:
            self._renewal = loop.create_task(self._renew_forever(), name="socketio-presence")

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_seconds / 3)
            if self._sockets:
                await self._record(list(self._sockets.items()))

    async def close(self) -> None:
        """Stop renewing and release the running loop's connections (members then expire)."""
        task, self._renewal = self._renewal, None
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close(close_connection_pool=True)
