"""Replay protection for webhook channels that survives a restart.

Telegram, Meta and Twilio redeliver a webhook they think failed, sometimes much later; an
in-memory set of seen ids forgets everything at a restart, and an old message was then
answered (and acted on) again. `ReplayGuard` remembers each platform message id in the
project's database (`seen_channel_messages`, unique per channel and id, so two workers
cannot both win) and refuses messages older than `MESSAGE_MAX_AGE_HOURS` (24 h) by the
platform's own timestamp, which also bounds how long ids must be kept. If the database is
unreachable the guard falls back to its in-memory cache rather than dropping patients'
messages. Database calls run in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from bot.settings import get_settings
from bot.storage.database import Database, DatabaseUnavailable, get_database
from bot.storage.models import UTC, SeenChannelMessage

logger = logging.getLogger(__name__)

MESSAGE_ID_MAX_CHARS = 128
_MEMORY_KEPT = 10_000
_PRUNE_EVERY = 500


class ReplayGuard:
    """Says whether a platform message is new, recent and not yet handled."""

    def __init__(
        self,
        channel: str,
        database: Database | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Guard one channel's ids; the database is `DATABASE_URL`'s unless given.

        Args:
            channel: Channel name, the namespace of its ids.
            database: Where ids are remembered (created lazily; nothing connects here).
            clock: Wall-clock seconds (injectable for tests).
        """
        self.channel = channel
        self._database = database
        self._clock = clock
        self._memory: OrderedDict[str, None] = OrderedDict()
        self._inserts = 0

    @property
    def max_age_seconds(self) -> float:
        """Messages older than this are refused (`MESSAGE_MAX_AGE_HOURS`)."""
        return get_settings().message_max_age_hours * 3600

    def is_too_old(self, sent_at: object) -> bool:
        """True if the platform's timestamp (unix seconds) is outside the window.

        A missing or unreadable timestamp is not "too old": the id check still applies.
        """
        try:
            stamp = float(str(sent_at))
        except ValueError:
            return False
        return self._clock() - stamp > self.max_age_seconds

    async def first_time(self, message_id: object) -> bool:
        """Record `message_id`; False if it was seen before (here or before a restart)."""
        key = str(message_id)[:MESSAGE_ID_MAX_CHARS]
        if not key or key in self._memory:
            return not key
        self._memory[key] = None
        while len(self._memory) > _MEMORY_KEPT:
            self._memory.popitem(last=False)
        try:
            return await asyncio.to_thread(self._insert, key)
        except DatabaseUnavailable:
            logger.warning("Replay store unavailable; %s ids are checked in memory only", self.channel)
            return True

    def _insert(self, key: str) -> bool:
        database = self._database or get_database()
        now = datetime.fromtimestamp(self._clock(), UTC)
        try:
            with database.session_scope() as session:
                session.add(SeenChannelMessage(channel=self.channel, message_id=key, seen_at=now))
        except IntegrityError:
            return False
        self._inserts += 1
        if self._inserts % _PRUNE_EVERY == 1:
            cutoff = now - 2 * timedelta(seconds=self.max_age_seconds)
            with database.session_scope() as session:
                session.execute(
                    delete(SeenChannelMessage).where(
                        SeenChannelMessage.channel == self.channel, SeenChannelMessage.seen_at < cutoff
                    )
                )
        return True

