"""Records kept during a database outage, in one Redis queue every action server stores from.

Each action server keeps what it could not store (bookings, hand-offs, red-flag alerts,
feedback) in a spool until the database is back (`bot.records`). On its own disk, a record
waits for that one process: if it is killed and not started again, or its machine is
replaced, a patient's booking waits there for nobody. When SPOOL_REDIS_URL (else REDIS_URL)
is set, the action servers share one queue instead: a Redis list per database (keyed by a
hash of the database URL, so every server must use the same DATABASE_URL), holding the same
sealed lines as the disk spool (encrypted with SPOOL_KEY, which production requires).
Whichever server is running stores them, oldest first, once the database answers.

One server stores at a time (a lock with a lifetime, renewed as it goes), and it removes
from the head only what it has dealt with, only while it still holds the lock; others only
append to the tail. A line that can never be stored is quarantined by the server that met it.
If a server dies between storing a line and removing it, the next one stores that line
again: a booking replays idempotently (its key), any other record may appear twice, never
zero times. Redis must keep its data across restarts (`appendonly yes`, as in compose.yaml).

Redis away as well: the record goes to the disk spool, as without this module.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import List, Optional

from bot import spool
from bot.channels.store import RedisStore, StoreUnavailable

logger = logging.getLogger(__name__)

KEY_PREFIX = "clinic:spool:"
"""The queue is `clinic:spool:records:<hash of the database URL>:pending`, its lock `...:lock`."""
BATCH = 50
"""How many lines one round reads from the head of the queue."""
LOCK_SECONDS = 120.0
"""How long a server may work on the queue before another may take over (renewed each round)."""
QUIET_SECONDS = 60.0
"""After a Redis error, how long before the next one is logged."""

StoreLines = Callable[[List[bytes]], Awaitable[tuple[int, int]]]
"""Stores lines from the head, oldest first: (how many were stored, how many were dealt with)."""


class SharedRecords:
    """One database's queue of records waiting to be stored, shared by every action server."""

    def __init__(self, store: RedisStore, database_url: str) -> None:
        """Keys live under the store's prefix, per database (a hash of its URL)."""
        self.store = store
        self.namespace = f"records:{spool.database_folder(database_url)}"
        self._logged_at = 0.0

    def _failed(self, what: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._logged_at >= QUIET_SECONDS:
            self._logged_at = now
            logger.warning("shared records spool: could not %s (%s); using this server's own spool",
                           what, type(exc).__name__)

    async def keep(self, line: bytes) -> bool:
        """Queue a sealed record line; False if Redis is away (the caller spools it on disk)."""
        try:
            await self.store.push(self.namespace, "pending", line)
        except StoreUnavailable as exc:
            self._failed("queue a record", exc)
            return False
        return True

    async def waiting(self) -> bool:
        """Whether records wait in the queue (False when Redis cannot say)."""
        try:
            return await self.store.length(self.namespace, "pending") > 0
        except StoreUnavailable as exc:
            self._failed("look at the queue", exc)
            return False

    async def store_waiting(self, store_lines: StoreLines) -> int:
        """Store the queue from its head while the database answers; returns how many were saved.

        Returns 0 at once when another server is storing it.
        """
        holder = uuid.uuid4().hex
        try:
            if not await self.store.claim(self.namespace, "lock", LOCK_SECONDS, holder):
                return 0
        except StoreUnavailable as exc:
            self._failed("take the queue's lock", exc)
            return 0
        saved = 0
        try:
            while True:
                lines = await self.store.head(self.namespace, "pending", BATCH)
                if not lines:
                    break
                stored, handled = await store_lines(lines)
                saved += stored
                if handled and not await self.store.drop_head(self.namespace, "pending", handled, "lock", holder):
                    logger.warning("shared records spool: the lock expired while storing; another "
                                   "server goes on from the same records")
                    break
                if handled < len(lines):
                    break  # the database went away again: the rest waits, in order
                await self.store.renew(self.namespace, "lock", holder, LOCK_SECONDS)
        except StoreUnavailable as exc:
            self._failed("store the queue", exc)
        finally:
            try:
                await self.store.release(self.namespace, "lock", holder)
            except StoreUnavailable as exc:
                self._failed("release the queue's lock", exc)
        return saved


@functools.lru_cache(maxsize=4)
def _shared(redis_url: str, database_url: str) -> SharedRecords:
    return SharedRecords(RedisStore(redis_url, KEY_PREFIX), database_url)


def shared_records(redis_url: str, database_url: str) -> Optional[SharedRecords]:
    """The shared queue for this database, or None when no Redis is configured."""
    return _shared(redis_url, database_url) if redis_url else None
