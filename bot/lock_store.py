"""A Redis lock store for more than one Rasa server: every change is one atomic Redis step.

Rasa keeps one ticket queue per conversation so that only one server at a time runs a
conversation's turn (reads its tracker, predicts, stores the new events). Rasa 3.6.21's
`RedisLockStore` changes that queue by get-modify-set: it reads the whole queue, adds or
removes a ticket in Python and writes the queue back. When two Rasa servers take a ticket
for the same conversation at the same moment, both read the same queue and the second write
drops the first one's ticket; both then believe they hold the lock, run the turn at once,
and the later tracker save overwrites the earlier one's events.

Here a conversation's queue is a Redis hash (ticket number -> expiry time) and its ticket
numbers come from `INCR` on a counter, so a ticket is never handed out twice and never lost:
issuing, finishing and expiring tickets are each a single Lua script or command, which Redis
runs without interleaving. The waiting loop, lifetimes and `LockError` are Rasa's own
(`LockStore.lock`), so Rasa's processor uses this store unchanged.

Configure it in endpoints.yml once more than one Rasa server shares the tracker store:

    lock_store:
      type: bot.lock_store.AtomicRedisLockStore
      url: ${REDIS_URL}          # e.g. redis://127.0.0.1:6379/1
      key_prefix: clinic         # optional, one per assistant sharing a Redis

One server (`make run`) keeps Rasa's default in-memory lock store: nothing to share.

When Redis cannot be reached, a patient still gets an answer: the turn is locked in this
server's memory instead (Rasa's `InMemoryLockStore`), which still keeps one server from
running two turns of a conversation at once; only two servers serving the same conversation
at the same moment are no longer kept apart. The outage is logged once as LOCK STORE DOWN
(and its end as "lock store back"); Redis is tried again every few seconds, not on every
message, so a stalled Redis does not make every patient wait for a time-out.

A ticket lives `ticket_hold_seconds` (10 s) and its server renews it every third of that for
as long as the turn lasts. Rasa gives every ticket one fixed lifetime instead (60 s,
`TICKET_LOCK_LIFETIME`): a server killed mid-turn then blocked that conversation for a
minute, and a turn slower than the lifetime lost its lock while still running. Here a dead
server's turn blocks the conversation for at most the hold, and a live one never loses it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from contextlib import asynccontextmanager
from typing import Any, AsyncGenerator, Deque, Optional

import redis
from rasa.core.lock import Ticket, TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, InMemoryLockStore, LockError, LockStore
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)

DEFAULT_URL = "redis://127.0.0.1:6379/1"
SOCKET_TIMEOUT_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 2.0
RETRY_REDIS_AFTER_SECONDS = 5.0  # while Redis is down, locks are in memory for this long
# the keys outlive the longest ticket a little, then Redis removes a forgotten queue itself
KEY_GRACE_MS = 60_000
# a ticket not renewed by its server lapses after this: how long a killed server blocks a patient
TICKET_HOLD_SECONDS = 10.0
RENEWALS_PER_HOLD = 3

# KEYS: queue hash, counter. ARGV: now, expiry of the new ticket, key lifetime (ms).
_ISSUE = """
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if tonumber(fields[i + 1]) < tonumber(ARGV[1]) then redis.call('HDEL', KEYS[1], fields[i]) end
end
local number = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], number, ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return number
"""

# KEYS: queue hash, counter. ARGV: ticket number, its new expiry, key lifetime (ms).
# A ticket already gone (released, or lapsed) is not brought back.
_RENEW = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
"""

# KEYS: queue hash. ARGV: now. Drops expired tickets; an empty queue disappears.
_EXPIRE = """
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if tonumber(fields[i + 1]) < tonumber(ARGV[1]) then redis.call('HDEL', KEYS[1], fields[i]) end
end
return redis.call('HLEN', KEYS[1])
"""

# KEYS: queue hash. ARGV: ticket number. Removing the last ticket removes the queue.
_RELEASE = """
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
return 1
"""


class AtomicRedisLockStore(LockStore):
    """Rasa's ticket lock, kept in Redis without a read-modify-write anywhere."""

    def __init__(
        self,
        endpoint_config: Optional[EndpointConfig] = None,
        url: Optional[str] = None,
        key_prefix: Optional[str] = None,
        socket_timeout: float = SOCKET_TIMEOUT_SECONDS,
        retry_redis_after: float = RETRY_REDIS_AFTER_SECONDS,
        ticket_hold_seconds: float = TICKET_HOLD_SECONDS,
    ) -> None:
        """Connect from endpoints.yml (`url`, `key_prefix`, `ticket_hold_seconds`) or from arguments."""
        kwargs: dict[str, Any] = dict(endpoint_config.kwargs) if endpoint_config else {}
        url = url or (endpoint_config.url if endpoint_config else None) or DEFAULT_URL
        key_prefix = key_prefix or kwargs.get("key_prefix") or "clinic"
        if not str(key_prefix).isalnum():
            raise ValueError(f"lock store key_prefix must be letters and digits, not {key_prefix!r}")
        self.red = redis.Redis.from_url(
            url,
            socket_timeout=float(kwargs.get("socket_timeout", socket_timeout)),
            socket_connect_timeout=float(kwargs.get("socket_connect_timeout", CONNECT_TIMEOUT_SECONDS)),
        )
        self.local = InMemoryLockStore()  # while Redis is unreachable
        self._down_until = 0.0
        self._retry_after = float(kwargs.get("retry_redis_after", retry_redis_after))
        self.down = False
        self.hold = float(kwargs.get("ticket_hold_seconds", ticket_hold_seconds))
        if self.hold <= 0:
            raise ValueError(f"lock store ticket_hold_seconds must be positive, not {self.hold}")
        self.key_prefix = f"{key_prefix}:lock:"
        self._issue = self.red.register_script(_ISSUE)
        self._expire = self.red.register_script(_EXPIRE)
        self._release = self.red.register_script(_RELEASE)
        self._renew = self.red.register_script(_RENEW)
        super().__init__()

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = 1,
    ) -> AsyncGenerator[TicketLock, None]:
        """Rasa's ticket lock in Redis; in this server's memory while Redis is unreachable.

        The ticket lives `self.hold` seconds (or `lock_lifetime`, if shorter) and is renewed
        while it waits and while its turn runs, so only a dead server's ticket lapses.
        """
        ticket: Optional[int] = None
        acquired: Optional[TicketLock] = None
        renewing: Optional[asyncio.Task] = None
        hold = min(lock_lifetime, self.hold)
        try:
            if time.monotonic() >= self._down_until:
                try:
                    ticket = self._take_ticket(conversation_id, hold)
                    renewing = asyncio.create_task(self._keep_alive(conversation_id, ticket, hold))
                    acquired = await self._acquire_lock(conversation_id, ticket, wait_time_in_seconds)
                    self._came_back()
                except redis.RedisError as error:
                    self._went_down(error)
            if acquired is not None:
                yield acquired
            else:
                async with self.local.lock(conversation_id, lock_lifetime, wait_time_in_seconds) as local:
                    yield local
        finally:
            if renewing is not None:
                renewing.cancel()
            if ticket is not None:
                try:
                    self.cleanup(conversation_id, ticket)
                except redis.RedisError:
                    pass  # the ticket expires with its lifetime

    async def _keep_alive(self, conversation_id: str, ticket: int, hold: float) -> None:
        """Push the ticket's expiry on while this server waits for or runs the turn.

        Runs in a worker thread, so a slow Redis never stalls the patients' event loop; a failed
        renewal is tried again next time (the ticket has two more renewals' worth of life).
        """
        while True:
            await asyncio.sleep(hold / RENEWALS_PER_HOLD)
            try:
                kept = await asyncio.to_thread(self._renew_ticket, conversation_id, ticket, hold)
            except redis.RedisError:
                continue
            if not kept:
                logger.warning("lock ticket %s of a conversation lapsed before it was renewed "
                               "(this server was stalled for over %.0f s)", ticket, hold)
                return

    def _renew_ticket(self, conversation_id: str, ticket: int, hold: float) -> bool:
        key_ms = int(hold * 1000) + KEY_GRACE_MS
        return bool(self._renew(
            keys=[self._queue(conversation_id), self._counter(conversation_id)],
            args=[ticket, repr(time.time() + hold), key_ms],
        ))

    def _went_down(self, error: redis.RedisError) -> None:
        self._down_until = time.monotonic() + self._retry_after
        if not self.down:
            self.down = True
            logger.error("LOCK STORE DOWN: Redis unreachable (%s); locking in this server's memory "
                         "until it is back", type(error).__name__)

    def _came_back(self) -> None:
        if self.down:
            self.down = False
            logger.warning("lock store back: Redis reachable again")

    def _queue(self, conversation_id: str) -> str:
        return f"{self.key_prefix}{conversation_id}"

    def _counter(self, conversation_id: str) -> str:
        return f"{self.key_prefix}{conversation_id}:last"

    def _take_ticket(self, conversation_id: str, lock_lifetime: float) -> int:
        """Take the next ticket number and queue it, in one step (Redis errors raised)."""
        now = time.time()
        key_ms = int(lock_lifetime * 1000) + KEY_GRACE_MS
        number = self._issue(
            keys=[self._queue(conversation_id), self._counter(conversation_id)],
            args=[repr(now), repr(now + lock_lifetime), key_ms],
        )
        return int(number)

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """Take the next ticket number and queue it, in one step."""
        try:
            return self._take_ticket(conversation_id, lock_lifetime)
        except redis.RedisError as error:
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error

    def get_lock(self, conversation_id: str) -> Optional[TicketLock]:
        """The conversation's queue as Rasa's `TicketLock`, expired tickets left out."""
        stored = self.red.hgetall(self._queue(conversation_id))
        now = time.time()
        tickets: Deque[Ticket] = deque(
            sorted(
                (Ticket(int(number), float(expires)) for number, expires in stored.items()),
                key=lambda ticket: ticket.number,
            )
        )
        tickets = deque(ticket for ticket in tickets if ticket.expires >= now)
        if not tickets:
            return None
        return TicketLock(conversation_id, tickets)

    def update_lock(self, conversation_id: str) -> None:
        """Drop expired tickets (a server that died holding one) in one step."""
        self._expire(keys=[self._queue(conversation_id)], args=[repr(time.time())])

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        """Remove one ticket without touching the others."""
        self._release(keys=[self._queue(conversation_id)], args=[ticket_number])

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Release the ticket; the queue goes with its last ticket, never with a waiting one."""
        self.finish_serving(conversation_id, ticket_number)

    def delete_lock(self, conversation_id: str) -> None:
        """Forget the conversation's queue and counter."""
        deleted = self.red.delete(self._queue(conversation_id), self._counter(conversation_id))
        self._log_deletion(conversation_id, bool(deleted))

    def save_lock(self, lock: TicketLock) -> None:
        """Add the lock's tickets to the queue (never removes another server's ticket)."""
        if lock.tickets:
            self.red.hset(
                self._queue(lock.conversation_id),
                mapping={ticket.number: repr(ticket.expires) for ticket in lock.tickets},
            )
