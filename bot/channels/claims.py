"""Client message ids: answered once while the server answering lives, again if it dies.

The widget (socket.io) re-sends every message it has no acknowledgement for after it
reconnects, and a REST client re-sends a message that got no answer (a 502 from the proxy
when the server answering it was killed); behind a load balancer the re-send may reach
another server. Remembering the id when the message arrived made a re-send of a message
whose server died before answering a "duplicate": the patient's message (perhaps a red flag)
was dropped without a word. So an id is first *claimed* with a short lease, which the
server answering renews while it works, and is marked *answered* once the replies are sent
(kept for a day):

- answered: the re-send is a duplicate and is acknowledged as one;
- claimed, lease alive: a server is still answering it; the client is asked to send it again
  after `retry_after` seconds (its answer arrives in the meantime if that server lives);
- the lease lapsed (the server died before answering): this server claims and answers it.

With the shared store down the message is answered: twice is better than never.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
import uuid
from collections.abc import AsyncIterator
from typing import AsyncContextManager

from bot.channels.store import ChannelCache, StoreUnavailable

logger = logging.getLogger(__name__)

MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""What a client's message id may look like (the widget's, a REST client's)."""
ANSWERED_TTL_SECONDS = 24 * 3600
"""How long an answered message id is remembered, so a later re-send is dropped."""
RETRY_AFTER_SECONDS = 3
"""What a client is told to wait before re-sending a message another server is answering."""

LEASE_SECONDS = 10.0
"""How long a claim outlives the last sign of life of the server answering."""

ANSWERED = "answered"
CLAIMED = "claim:"


class Claim(enum.Enum):
    """What a server may do with a message id it received."""

    ANSWER = "answer"            # claimed here: answer it
    DUPLICATE = "duplicate"      # answered already
    IN_PROGRESS = "in_progress"  # another server (or this one) is answering it right now


class MessageClaims:
    """Claims on client message ids, kept in a `ChannelCache` (Redis when shared)."""

    def __init__(self, cache: ChannelCache, lease_seconds: float = LEASE_SECONDS) -> None:
        """Claim in `cache`; an answered id is kept for the cache's lifetime."""
        self.cache = cache
        self.lease_seconds = lease_seconds

    @contextlib.asynccontextmanager
    async def handling(self, key: str) -> AsyncIterator[Claim]:
        """Claim `key` for the body; answered when the body ends, released if it fails.

        The lease is renewed every third of its length while the body runs, so only a
        server that stopped (killed, frozen, cut off) lets it lapse.
        """
        token = f"{CLAIMED}{uuid.uuid4().hex}"
        try:
            state = await self._claim(key, token)
        except StoreUnavailable:
            logger.warning("channel store unreachable: a re-sent message may be answered twice")
            yield Claim.ANSWER
            return
        if state is not Claim.ANSWER:
            yield state
            return
        renewing = asyncio.create_task(self._renew(key, token))
        try:
            yield Claim.ANSWER
        except BaseException:
            renewing.cancel()
            with contextlib.suppress(StoreUnavailable):
                await self.cache.release(key, token)
            raise
        renewing.cancel()
        try:
            await self.cache.put(key, ANSWERED)
        except StoreUnavailable:
            logger.warning("channel store unreachable: an answered message may be answered again")

    async def _claim(self, key: str, token: str) -> Claim:
        """Claim `key` for `token`, or say who holds it (a claim can lapse between two calls)."""
        for _ in range(2):
            if await self.cache.claim(key, token, self.lease_seconds):
                return Claim.ANSWER
            state = await self.cache.get(key)
            if state is not None:
                # anything but a live claim is an answered id ("1": written before claims had leases)
                return Claim.IN_PROGRESS if state.startswith(CLAIMED) else Claim.DUPLICATE
        return Claim.IN_PROGRESS

    async def _renew(self, key: str, token: str) -> None:
        """Keep the claim alive until cancelled; stop if it was lost (it lapsed)."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                if not await self.cache.renew(key, token, self.lease_seconds):
                    return
            except StoreUnavailable:
                continue

    def for_message(self, sender_id: str, message_id: object) -> AsyncContextManager[Claim]:
        """`handling` for one conversation's message id; no (valid) id, no claim: answer it."""
        if not isinstance(message_id, str) or not MESSAGE_ID.match(message_id):
            return contextlib.nullcontext(Claim.ANSWER)
        return self.handling(f"{sender_id}|{message_id}")
