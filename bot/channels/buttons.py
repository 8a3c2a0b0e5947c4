"""Channel-independent button helpers: numbered text, typed replies, short ids.

Not every channel can show buttons (SMS, WhatsApp beyond ten options, Twilio), and Rasa's
default fallback prints `1: Title (/payload)`, leaking intent names to patients. Here buttons
become a plain numbered list, and a typed reply ("2", "option 2", "book a consultation") is
resolved back to the button's payload by a pure function given the last buttons sent, which
`ButtonMemory` keeps (see bot/channels/store.py for where).
Channels with size limits on button data (Telegram: 64 bytes, WhatsApp: 256 characters) map
long payloads to short, deterministic ids that they can resolve again (`ShortIds`, in the
same store, so in every process when it is Redis).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cachetools import TTLCache

from bot.channels.store import ChannelCache, MemoryStore, StoreUnavailable

logger = logging.getLogger(__name__)

Button = Mapping[str, Any]

BUTTONS_TTL_SECONDS = 24 * 3600
"""How long the buttons sent to a patient can be answered by typing a number or words."""

_NUMBER_REPLY = re.compile(r"^(?:option|choice|number|no\.?|nr\.?|#)?\s*(\d{1,3})\s*[.):]?$", re.IGNORECASE)
_NOT_WORD = re.compile(r"[^\w]+", re.UNICODE)
SHORT_ID_PREFIX = "~"

SHORT_IDS_TTL_SECONDS = 7 * 24 * 3600
"""How long a long payload stays resolvable after its button was last sent: a keyboard stays
on the patient's screen for days, and the payload is the same for every patient."""


def button_title(button: Button) -> str:
    """Title a patient sees; falls back to the payload so a button is never blank."""
    return str(button.get("title") or button.get("payload") or "").strip()


def button_payload(button: Button) -> str:
    """Payload Rasa should receive; a button without one sends its title, like a typed reply."""
    return str(button.get("payload") or button.get("title") or "").strip()


def render_numbered(buttons: Sequence[Button]) -> str:
    """Render buttons as `1. Sciatica` lines for channels that cannot show buttons.

    Args:
        buttons: Rasa buttons (`title`, `payload`).

    Returns:
        One numbered line per button, without payloads.
    """
    return "\n".join(f"{index}. {button_title(b)}" for index, b in enumerate(buttons, 1))


def numbered_message(text: str, buttons: Sequence[Button]) -> str:
    """Message text followed by its buttons as a numbered list.

    Args:
        text: The bot's message.
        buttons: Rasa buttons to list under it.

    Returns:
        `text`, a blank line, then the numbered options (just the options if `text` is empty).
    """
    options = render_numbered(buttons)
    text = (text or "").strip()
    if not options:
        return text
    return f"{text}\n\n{options}" if text else options


def _normalise(text: str) -> str:
    return " ".join(_NOT_WORD.sub(" ", text.casefold()).split())


def resolve_reply(text: str, buttons: Sequence[Button]) -> str | None:
    """Map a typed reply to the payload of one of the buttons last sent.

    Accepts the option's number ("2", "2.", "2)", "option 2", "#2") or its words,
    case-, space- and punctuation-insensitive ("book a consultation!"). Anything else,
    including a number out of range, is left to NLU.

    Args:
        text: What the patient typed.
        buttons: The buttons the bot last sent to this patient, in order.

    Returns:
        The chosen button's payload, or None if the reply does not pick a button.
    """
    if not buttons or not text:
        return None
    stripped = text.strip()
    wanted = _normalise(stripped)
    if wanted:
        # Words first: with titles such as "0", "1", "2" a typed "1" means the title.
        for button in buttons:
            if _normalise(button_title(button)) == wanted:
                return button_payload(button) or None
    match = _NUMBER_REPLY.match(stripped)
    if match:
        index = int(match.group(1))
        if 1 <= index <= len(buttons):
            return button_payload(buttons[index - 1]) or None
    return None


class ButtonMemory:
    """Last buttons sent to each sender, bounded in age (and, in process, in number).

    Used by connectors so a typed reply can be resolved with `resolve_reply`. A reply
    consumes the entry (`take`): buttons are an answer to the next message only, so a
    later "2" in an unrelated question is never mistaken for a choice. The entries live in
    a `ChannelCache`: in this process by default, in Redis when `CHANNEL_CACHE_URL` is set,
    so the process that receives the "2" need not be the one that sent the buttons. Only
    each button's title and payload are kept, under a hash of the sender id.
    """

    def __init__(
        self,
        cache: ChannelCache | None = None,
        max_senders: int = 10_000,
        ttl_seconds: float = BUTTONS_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Remember in `cache`, or in a private in-process one.

        Args:
            cache: Where to remember (the channel's, see `bot.channels.messaging`).
            max_senders: Without `cache`: oldest senders are forgotten beyond this many.
            ttl_seconds: Without `cache`: buttons older than this are forgotten.
            clock: Without `cache`: monotonic time source (injectable for tests).
        """
        self._cache = cache or ChannelCache(
            MemoryStore(max_senders, clock), "buttons", ttl_seconds, secret=""
        )

    async def remember(self, sender_id: str, buttons: Sequence[Button]) -> None:
        """Store the buttons just sent to `sender_id`, replacing earlier ones.

        An unreachable store is logged: typed numbers then go to NLU, nothing fails.
        """
        kept = [{"title": button_title(b), "payload": button_payload(b)} for b in buttons]
        try:
            await self._cache.put(sender_id, json.dumps(kept, ensure_ascii=False))
        except StoreUnavailable as error:
            logger.warning("Could not remember the buttons sent (%s)", error)

    async def take(self, sender_id: str) -> list[dict[str, Any]]:
        """Remove and return the sender's last buttons (empty if none, expired or unreachable)."""
        try:
            raw = await self._cache.take(sender_id)
        except StoreUnavailable as error:
            logger.warning("Could not read the buttons sent (%s)", error)
            return []
        if raw is None:
            return []
        try:
            buttons = json.loads(raw)
        except ValueError:
            return []
        return [b for b in buttons if isinstance(b, dict)] if isinstance(buttons, list) else []


class ShortIds:
    """Fit payloads into small button-data fields and map them back, in every process.

    A payload that fits is used as is. A longer one becomes `~` plus 22 characters of its
    SHA-256 (deterministic, so the same button always gets the same id, in any process).
    The id's payload is kept in this process (bounded in number and age) and, given a
    `ChannelCache`, in the channel's store too: with Redis (`CHANNEL_CACHE_URL`) a press
    that reaches another process behind the load balancer still resolves. Every encode
    renews the entry's lifetime. An id known nowhere (expired, issued before a restart
    without Redis, or the store unreachable) decodes to None, and callers fall back to the
    button's title, which every channel echoes back with the press.
    """

    def __init__(
        self,
        cache: ChannelCache | None = None,
        max_entries: int = 10_000,
        ttl_seconds: float = SHORT_IDS_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Map in this process, and in `cache` (the channel's shared store) if given.

        Args:
            cache: The channel's store (see `bot.channels.messaging.ChannelMemory`).
            max_entries: Payloads this process keeps (the oldest go first).
            ttl_seconds: How long this process keeps a payload after its last encode.
            clock: Monotonic time source of the in-process map (injectable for tests).
        """
        self._local: TTLCache[str, str] = TTLCache(maxsize=max_entries, ttl=ttl_seconds, timer=clock)
        self._shared = cache

    @staticmethod
    def short_id(payload: str) -> str:
        """The id of `payload`: `~` and 22 URL-safe characters of its SHA-256."""
        digest = hashlib.sha256(payload.encode("utf-8")).digest()
        return SHORT_ID_PREFIX + base64.urlsafe_b64encode(digest).decode("ascii")[:22]

    async def encode(self, payload: str, max_bytes: int) -> str:
        """Return `payload` if it fits in `max_bytes` UTF-8 bytes, else a short id for it.

        An unreachable store is logged: the id still resolves in this process, and a press
        that reaches another one falls back to the title.
        """
        if len(payload.encode("utf-8")) <= max_bytes and not payload.startswith(SHORT_ID_PREFIX):
            return payload
        short = self.short_id(payload)
        self._local[short] = payload
        if self._shared is not None:
            try:
                await self._shared.put(short, payload)
            except StoreUnavailable as error:
                logger.warning("Could not share a button id (%s); other processes will use its title", error)
        return short

    async def encode_all(self, payloads: Sequence[str], max_bytes: int) -> list[str]:
        """`encode` each payload, concurrently (one message's buttons), in order."""
        return list(await asyncio.gather(*(self.encode(p, max_bytes) for p in payloads)))

    async def decode(self, data: str) -> str | None:
        """Payload for button data from `encode`; None for a short id known nowhere."""
        if not data.startswith(SHORT_ID_PREFIX):
            return data
        payload = self._local.get(data)
        if payload is not None or self._shared is None:
            return payload
        try:
            return await self._shared.get(data)
        except StoreUnavailable as error:
            logger.warning("Could not look up a button id (%s); using the button's title", error)
            return None
