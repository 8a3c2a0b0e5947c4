"""Conversations kept during a database outage, shared between Rasa servers through Redis.

With two or more Rasa servers behind the proxy, one patient's messages reach different
servers: webhooks carry no cookie to stick to. While the database is away each server keeps
what it answered in its own memory and disk spool (`bot.spool`), so the next message,
answered by the other server, would miss the turn before ("tell me more" about nothing) and,
once the database is back, the two copies could be stored out of order.

When SPOOL_REDIS_URL (else REDIS_URL) is set, a conversation spooled by one server is also
put in Redis, sealed like the disk spool (encrypted with SPOOL_KEY, which production
requires) under hashes of the database URL (every server must use the same DATABASE_URL) and
of the conversation id. The server that answers next continues the
newest copy (by its last event's time), also when the database is back but the first server
has not stored its spool yet, or never will (it was killed). A copy is removed once a save
has stored it, and only if no server replaced it meanwhile. The disk spool stays each
server's durable copy; a Redis copy expires after SHARED_TTL_SECONDS.

The first message of an outage has the same problem the other way round: the server that
answers it may not have answered the turn before, which the other server stored. So after
every save a server also puts the conversation's latest copy in Redis (`remember`: one `SET`
per message, sealed the same way, expiring after RECENT_TTL_SECONDS), and a server that
answers from its memory because the database is away continues that copy if it is newer.

Redis away: each server goes on with its own copy, as without this module (logged, at most
once a minute). A copy that cannot be read (another SPOOL_KEY, damaged) is ignored.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Dict, List, Optional

from bot import spool
from bot.channels.store import RedisStore, StoreUnavailable
from bot.settings import Settings

logger = logging.getLogger(__name__)

KEY_PREFIX = "clinic:spool:"
"""Keys are `clinic:spool:trackers:<hash of the database URL>:<hash of the conversation id>`."""
SHARED_TTL_SECONDS = 7 * 24 * 3600
RECENT_TTL_SECONDS = 2 * 3600
"""How long a stored conversation's latest copy is kept for the first message of an outage.

Longer than a conversation's pauses (a session expires after 60 minutes of silence, and its
slots are carried over), short so that what is kept outside the database is only what a
conversation in progress needs."""
QUIET_SECONDS = 60.0
"""After a Redis error, how long before the next one is logged."""


def last_time(events: List[Dict[str, Any]]) -> Optional[float]:
    """Timestamp of the last event (the conversation's newest moment), if any."""
    for event in reversed(events):
        if event.get("timestamp") is not None:
            return float(event["timestamp"])
    return None


class SharedSpool:
    """Spooled conversations of one database, in Redis for every Rasa server to continue."""

    def __init__(self, store: RedisStore, database_url: str, settings: Settings) -> None:
        """Keys live under the store's prefix, per database (a hash of its URL)."""
        self.store = store
        self.namespace = f"trackers:{spool.database_folder(database_url)}"
        self.recent_namespace = f"recent:{spool.database_folder(database_url)}"
        self.settings = settings
        self._held: Dict[str, str] = {}  # conversation -> the copy this server wrote or continued
        self._logged_at = 0.0

    @classmethod
    def from_settings(cls, settings: Settings, database_url: str) -> Optional[SharedSpool]:
        """The shared spool settings ask for, or None (one server: the disk spool is enough)."""
        if not settings.spool_redis_url:
            return None
        return cls(RedisStore(settings.spool_redis_url, KEY_PREFIX), database_url, settings)

    def _key(self, sender_id: str) -> str:
        return spool.reference(sender_id)

    def _failed(self, what: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._logged_at >= QUIET_SECONDS:
            self._logged_at = now
            logger.warning("shared spool: could not %s (%s); this server keeps its own copy",
                           what, type(exc).__name__)

    def _sealed(self, sender_id: str, events: List[Dict[str, Any]]) -> str:
        """`<time of the last event> <sealed conversation>`: comparable without unsealing."""
        sealed = spool.seal(json.dumps({"sender_id": sender_id, "events": events}), self.settings)
        return f"{last_time(events) or 0.0:.6f} {sealed.decode('utf-8')}"

    def _unsealed(self, sender_id: str, value: str, than: Optional[float]) -> Optional[List[Dict[str, Any]]]:
        """The events of a copy newer than `than`; None if it is not newer or can't be read."""
        stamp, _, sealed = value.partition(" ")
        try:
            if than is not None and float(stamp) <= than + 1e-6:
                return None
            data = json.loads(spool.unseal(sealed.encode("utf-8"), self.settings))
            events = list(data["events"])
            if data.get("sender_id") != sender_id:
                raise ValueError("another conversation's copy")
        except (ValueError, KeyError, TypeError) as exc:  # SpoolUnreadable is a ValueError
            self._failed("read a shared conversation", exc)
            return None
        return events

    async def put(self, sender_id: str, events: List[Dict[str, Any]]) -> None:
        """Share this server's copy of a conversation it could not store."""
        value = self._sealed(sender_id, events)
        try:
            await self.store.put(self.namespace, self._key(sender_id), value, SHARED_TTL_SECONDS)
        except StoreUnavailable as exc:
            self._failed("share a spooled conversation", exc)
            return
        self._held[sender_id] = value

    async def newer(self, sender_id: str, than: Optional[float]) -> Optional[List[Dict[str, Any]]]:
        """The events of a shared copy newer than `than` (this server's last event), if any.

        Reading one makes this server responsible for removing it once it has stored it.
        """
        try:
            value = await self.store.get(self.namespace, self._key(sender_id))
        except StoreUnavailable as exc:
            self._failed("read the shared spool", exc)
            return None
        if value is None or value == self._held.get(sender_id):
            return None
        events = self._unsealed(sender_id, value, than)
        if events is not None:
            self._held[sender_id] = value
        return events

    async def remember(self, sender_id: str, events: List[Dict[str, Any]]) -> None:
        """After a save: the conversation's latest copy, for whichever server answers next."""
        try:
            await self.store.put(
                self.recent_namespace, self._key(sender_id), self._sealed(sender_id, events),
                RECENT_TTL_SECONDS,
            )
        except StoreUnavailable as exc:
            self._failed("share a stored conversation's latest copy", exc)

    async def recent(self, sender_id: str, than: Optional[float]) -> Optional[List[Dict[str, Any]]]:
        """The latest stored copy if it is newer than `than` (this server's memory), else None."""
        try:
            value = await self.store.get(self.recent_namespace, self._key(sender_id))
        except StoreUnavailable as exc:
            self._failed("read a stored conversation's latest copy", exc)
            return None
        return None if value is None else self._unsealed(sender_id, value, than)

    async def stored(self, sender_id: str) -> None:
        """The copy this server held is in the database: remove it, unless it was replaced."""
        value = self._held.pop(sender_id, None)
        if value is None:
            return
        try:
            await self.store.release(self.namespace, self._key(sender_id), value)
        except StoreUnavailable as exc:
            self._failed("remove a stored conversation from the shared spool", exc)

    async def close(self) -> None:
        """Close this loop's Redis connections."""
        await self.store.close()
