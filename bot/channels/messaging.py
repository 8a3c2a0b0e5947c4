"""What the three messaging channels share: HTTP calls with retries, memories, secret checks.

Telegram, WhatsApp Cloud and Twilio WhatsApp each call a provider's HTTP API from Rasa's
event loop, remember buttons and seen message ids, and check webhook secrets. This module is
that layer, once:

* `LoopSession` is the one aiohttp session handling: made lazily in the running loop (Rasa
  creates channels before its loop runs, and tests run several loops), made again when the
  loop changed or the session was closed, closed only from the loop that owns it. Its `post`
  goes through aiohttp-retry with `RetryPolicy`: exponential back-off, and only what is safe
  to send again (no connection made or the connection dropped, 429 and 500/502/503/504;
  never a timeout, after which the provider may already have the message). A `Retry-After`
  header, or Telegram's `parameters.retry_after`, is waited for when it is short; a longer
  one, and the last failure, reach the caller as the provider's answer or `Unreachable`.
* `ChannelMemory` is a channel's button memory, button short ids and replay guard on one
  store (bot/channels/store.py: in process by default, Redis with `CHANNEL_CACHE_URL`).
* `same_secret` is the constant-time comparison behind every webhook secret check, and
  `check_secret_strength` refuses weak secrets in production.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp_retry import ExponentialRetry, RetryClient
from rasa.shared.exceptions import RasaException

from bot.channels.buttons import BUTTONS_TTL_SECONDS, SHORT_IDS_TTL_SECONDS, ButtonMemory, ShortIds
from bot.channels.replay import ReplayGuard, seen_ttl_seconds
from bot.channels.store import ChannelCache, ChannelStore, channel_store
from bot.settings import PLACEHOLDER_SECRETS, get_settings

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({500, 502, 503, 504})
"""Server errors worth another try; 429 is decided by its requested wait (`RetryPolicy`)."""

TOO_MANY_REQUESTS = 429


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently one provider call is tried."""

    attempts: int = 3
    """Tries in all, the first included."""
    first_delay_seconds: float = 0.5
    """Wait before the second try; it doubles for each further one."""
    max_delay_seconds: float = 8.0
    """Longest wait between two tries."""
    max_retry_after_seconds: float = 5.0
    """A 429 asking for a longer wait is not waited for: the caller gets the 429."""

    def options(self) -> ExponentialRetry:
        """aiohttp-retry options for one call."""
        return _ProviderRetry(self)


DEFAULT_RETRY = RetryPolicy()
SINGLE_TRY = RetryPolicy(attempts=1)
"""For callers that retry on their own schedule (Telegram's webhook registration)."""


class _ProviderRetry(ExponentialRetry):
    """aiohttp-retry's exponential back-off, plus the provider's own `Retry-After`."""

    def __init__(self, policy: RetryPolicy) -> None:
        super().__init__(
            attempts=policy.attempts,
            # aiohttp-retry waits start * factor ** attempt, and the first retry is attempt 1
            start_timeout=policy.first_delay_seconds / 2,
            max_timeout=policy.max_delay_seconds,
            factor=2.0,
            statuses=set(RETRY_STATUSES),
            exceptions={aiohttp.ClientConnectionError},
            retry_all_server_errors=False,
            evaluate_response_callback=self._accept,
        )
        self._policy = policy
        self._waits: dict[int, float] = {}

    async def _accept(self, response: aiohttp.ClientResponse) -> bool:
        """True keeps the answer; a 429 with a short enough requested wait is retried."""
        if response.status != TOO_MANY_REQUESTS:
            return True
        wait = await _requested_wait(response)
        if wait is not None and wait > self._policy.max_retry_after_seconds:
            return True
        if wait is not None:
            self._waits[id(response)] = wait
        return False

    def get_timeout(self, attempt: int, response: aiohttp.ClientResponse | None = None) -> float:
        """The provider's requested wait if it gave one, else exponential back-off."""
        wait = None
        if response is not None:
            wait = self._waits.pop(id(response), None)
            if wait is None:
                wait = _header_wait(response)
            response.close()  # the next try needs a connection; this answer is done with
        backoff = super().get_timeout(attempt)
        return backoff if wait is None else min(max(wait, 0.0), self._policy.max_delay_seconds)


def _header_wait(response: aiohttp.ClientResponse) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None  # absent, or an HTTP date: back off as usual


async def _requested_wait(response: aiohttp.ClientResponse) -> float | None:
    """`Retry-After` seconds, else Telegram's JSON `parameters.retry_after`."""
    wait = _header_wait(response)
    if wait is not None:
        return wait
    try:
        body = json.loads(await response.read() or b"null")
    except (ValueError, aiohttp.ClientError):
        return None
    parameters = body.get("parameters") if isinstance(body, dict) else None
    value = parameters.get("retry_after") if isinstance(parameters, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class Unreachable(Exception):
    """No answer from the provider after every try (refused, dropped or timed out)."""


@dataclass(frozen=True)
class Answer:
    """A provider's last answer: HTTP status and JSON body (None if it sent no JSON)."""

    status: int
    body: Any


class LoopSession:
    """One aiohttp session per event loop, made on first use, whose posts are retried."""

    def __init__(self, timeout_seconds: float, retry: RetryPolicy = DEFAULT_RETRY) -> None:
        """`timeout_seconds` is the total time allowed for one try; `retry` how often to try."""
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.retry = retry

    def get(self) -> aiohttp.ClientSession:
        """The running loop's session (a new one after a loop change or a close)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._loop = loop
        return self._session

    async def post(self, url: str, retry: RetryPolicy | None = None, **kwargs: Any) -> Answer:
        """POST with `retry` (default: the session's); the last answer, whatever its status.

        Args:
            url: The provider's endpoint.
            retry: This call's policy instead of the session's.
            **kwargs: aiohttp request arguments (`json`, `data`, `headers`, `auth`).

        Raises:
            Unreachable: No answer after every try; the message never names the URL.
        """
        options = (retry or self.retry).options()
        client = RetryClient(client_session=self.get(), retry_options=options, logger=logger)
        try:
            async with client.post(url, **kwargs) as answer:
                status = answer.status
                try:
                    body = await answer.json(content_type=None)
                except ValueError:
                    body = None
        # On Python 3.10 asyncio.TimeoutError is not the builtin TimeoutError.
        except (asyncio.TimeoutError, aiohttp.ClientError) as error:  # noqa: UP041
            raise Unreachable(_describe(error)) from None
        return Answer(status, body)

    async def close(self) -> None:
        """Close the session if it belongs to the running loop."""
        session, self._session = self._session, None
        same_loop = self._loop is asyncio.get_running_loop()
        if session is not None and not session.closed and same_loop:
            await session.close()


def _describe(error: BaseException) -> str:
    """The error's kind and, for connection errors, the host (never the path: it may hold a token)."""
    if isinstance(error, aiohttp.ClientConnectorError):
        return f"{type(error).__name__}: cannot connect to {error.host}:{error.port}"
    if isinstance(error, asyncio.TimeoutError):
        return "timed out"
    return type(error).__name__


@dataclass
class ChannelMemory:
    """A channel's button memory, button short ids and replay guard, on one store."""

    store: ChannelStore
    buttons: ButtonMemory
    replays: ReplayGuard
    short_ids: ShortIds

    @classmethod
    def for_channel(cls, channel: str, secret: str) -> ChannelMemory:
        """The store settings ask for, namespaced by `channel`, ids hashed with `secret`."""
        store = channel_store()
        return cls(
            store=store,
            buttons=ButtonMemory(ChannelCache(store, f"{channel}:buttons", BUTTONS_TTL_SECONDS, secret)),
            replays=ReplayGuard(
                channel, cache=ChannelCache(store, f"{channel}:seen", seen_ttl_seconds(), secret)
            ),
            short_ids=ShortIds(ChannelCache(store, f"{channel}:short-ids", SHORT_IDS_TTL_SECONDS, secret)),
        )

    async def close(self) -> None:
        """Release the store's connections in the running loop."""
        await self.store.close()


def same_secret(supplied: str, expected: str) -> bool:
    """Constant-time comparison of a secret a request carries with the expected one."""
    return hmac.compare_digest(supplied.encode("utf-8"), expected.encode("utf-8"))


def check_secret_strength(channel_label: str, name: str, value: str) -> None:
    """Refuse a weak secret (placeholder or under 16 characters) in production, warn elsewhere.

    Raises:
        RasaException: The secret is weak and `BOT_ENV=production`.
    """
    if value.lower() not in PLACEHOLDER_SECRETS and len(value) >= 16:
        return
    if get_settings().is_production:
        raise RasaException(f"{channel_label} {name} must be a real secret (16+ characters) in production")
    logger.warning("%s %s is weak; use 16+ random characters outside development", channel_label, name)

