"""What the three messaging channels share: their HTTP session and their secret comparison.

Telegram, WhatsApp Cloud and Twilio WhatsApp each call a provider's HTTP API from Rasa's
event loop. `LoopSession` is the one aiohttp session handling they use: made lazily in the
running loop (Rasa creates channels before its loop runs, and tests run several loops), made
again when the loop changed or the session was closed, closed only from the loop that owns
it. `same_secret` is the constant-time comparison behind every webhook secret check.
Deduplication of redelivered messages is `bot.channels.replay.ReplayGuard`.
"""

from __future__ import annotations

import asyncio
import hmac

import aiohttp


class LoopSession:
    """One aiohttp session per event loop, made on first use."""

    def __init__(self, timeout_seconds: float) -> None:
        """`timeout_seconds` is the total time allowed for one call."""
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> aiohttp.ClientSession:
        """The running loop's session (a new one after a loop change or a close)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._loop = loop
        return self._session

    async def close(self) -> None:
        """Close the session if it belongs to the running loop."""
        session, self._session = self._session, None
        same_loop = self._loop is asyncio.get_running_loop()
        if session is not None and not session.closed and same_loop:
            await session.close()


def same_secret(supplied: str, expected: str) -> bool:
    """Constant-time comparison of a secret a request carries with the expected one."""
    return hmac.compare_digest(supplied.encode("utf-8"), expected.encode("utf-8"))
