"""Replay protection for webhook channels that survives a restart.

Telegram, Meta and Twilio redeliver a webhook they think failed, sometimes much later; an
in-memory set of seen ids forgets everything at a restart, and an old message was then
answered (and acted on) again. `ReplayGuard` remembers each platform message id in the
project's database (`seen_channel_messages`, unique per channel and id, so two workers
cannot both win) and refuses messages older than `MESSAGE_MAX_AGE_HOURS` (24 h) by the
platform's own timestamp, which also bounds how long ids must be kept. In front of the
database every id is first claimed in the channel's `ChannelCache` (bot/channels/store.py):
in this process by default, in Redis when `CHANNEL_CACHE_URL` is set, where the claim is one
atomic `SET NX` shared by every process. If the database is unreachable that claim alone
decides, rather than dropping patients' messages. Database calls run in a worker thread,
never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from bot.channels.store import ChannelCache, MemoryStore, StoreUnavailable
from bot.settings import get_settings
from bot.storage.database import Database, DatabaseUnavailable, get_database
from bot.storage.models import UTC, SeenChannelMessage

logger = logging.getLogger(__name__)

MESSAGE_ID_MAX_CHARS = 128
_PRUNE_EVERY = 500


def seen_ttl_seconds() -> float:
    """How long a seen id is remembered in the cache: twice the replay window."""
    return 2 * get_settings().message_max_age_hours * 3600


class ReplayGuard:
    """Says whether a platform message is new, recent and not yet handled."""

    def __init__(
        self,
        channel: str,
        database: Database | None = None,
        clock: Callable[[], float] = time.time,
        cache: ChannelCache | None = None,
    ) -> None:
        """Guard one channel's ids; the database is `DATABASE_URL`'s unless given.

        Args:
            channel: Channel name, the namespace of its ids.
            database: Where ids are remembered (created lazily; nothing connects here).
            clock: Wall-clock seconds (injectable for tests).
            cache: Claimed first (the channel's, see `bot.channels.messaging`); without it,
                a private in-process one.
        """
        self.channel = channel
        self._database = database
        self._clock = clock
        self._cache = cache or ChannelCache(MemoryStore(), f"{channel}:seen", seen_ttl_seconds(), "")
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
        if not key:
            return True
        try:
            if not await self._cache.claim(key):
                return False
        except StoreUnavailable as error:
            logger.warning("Channel cache unavailable (%s); %s ids are checked in the database only", error,
                           self.channel)
        try:
            return await asyncio.to_thread(self._insert, key)
        except DatabaseUnavailable:
            logger.warning("Replay store unavailable; %s ids are checked in the channel cache only", self.channel)
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

