"""What every channel does to a patient's message before Rasa sees it, in one place.

Channels differ in how a message arrives; the rules for what may reach Rasa do not:

* **Text only.** A message that is not a string is the client's mistake (`BadMessage`;
  HTTP channels answer 400). Lone UTF-16 surrogates become U+FFFD and control characters
  (NUL included) become spaces, so nothing undecodable reaches NLU, the logs or the database.
* **Always an answer.** A message that is empty after that gets a short "I didn't catch
  that" from the channel, instead of Rasa's silent `[]`.
* **Typed payloads are text.** Rasa reads `/intent{"entity": ...}` as a ready-made intent,
  so a patient typing `/greet{"red_flag": "bladder"}` could set slots and raise alerts. A
  text starting with `/` reaches Rasa as a payload only if it is exactly one the assistant
  offered as a button since the patient's last message (read from the tracker), came from
  the platform's own button press (`trusted`), or is an open payload (`OPEN_PAYLOADS`,
  default `/greet`, the widget's first message). Otherwise its leading slashes are removed
  and NLU reads the words.
* **Bounded NLU cost.** DIET's transformer is quadratic in the message length, so NLU sees
  the first `NLU_MAX_CHARS` (1,000) characters. The whole text, up to
  `FULL_TEXT_MAX_CHARS` (20,000), travels in `metadata["full_text"]`, where the red-flag
  detector reads it, so a symptom at the end of a long message is not lost. The patient is
  told that the assistant read the first part. A `full_text` sent by a client is dropped:
  only this module sets it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from rasa.core.channels.channel import OutputChannel, UserMessage
from sanic import response
from sanic.response import HTTPResponse

from bot.settings import get_settings

logger = logging.getLogger(__name__)

FULL_TEXT_KEY = "full_text"
"""Metadata key holding the uncut text (up to FULL_TEXT_MAX_CHARS) when NLU saw less."""

DIDNT_CATCH = "Sorry, I didn't catch that. Could you type your question again?"
TRUNCATED_NOTE = (
    "Your message was long, so I read the first {limit:,} characters. If something "
    "important came later, please send it in a separate message."
)

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


class BadMessage(ValueError):
    """The request is not a message a patient could have typed; `code` names the problem."""

    def __init__(self, code: str, message: str) -> None:
        """Keep a stable machine-readable code next to the human-readable message."""
        super().__init__(message)
        self.code = code
        self.message = message


def error_response(code: str, message: str, status: int = 400) -> HTTPResponse:
    """The JSON body every channel answers a refused request with."""
    return response.json({"ok": False, "error": code, "message": message}, status=status)


def clean_text(value: object, limit: int | None = None) -> str:
    """The text a patient could have typed: surrogates and control characters replaced.

    Args:
        value: The message as received.
        limit: Characters kept (default `FULL_TEXT_MAX_CHARS`); cut before cleaning so a
            huge message costs no more than a long one.

    Returns:
        The cleaned, stripped text (possibly empty).

    Raises:
        BadMessage: `value` is not a string.
    """
    if not isinstance(value, str):
        raise BadMessage("invalid_message", "message must be a string")
    text = value[: limit or get_settings().full_text_max_chars]
    text = _SURROGATE.sub("\ufffd", text)
    return _CONTROL.sub(" ", text).strip()


def offered_payloads(events: Iterable[Any]) -> set[str]:
    """Button payloads the bot sent since the patient's last message (tracker events)."""
    payloads: set[str] = set()
    for event in reversed(list(events)):
        name = getattr(event, "type_name", None)
        if name == "user":
            break
        if name == "bot":
            data = getattr(event, "data", None) or {}
            for button in (data.get("buttons") or []) + (data.get("quick_replies") or []):
                if isinstance(button, Mapping) and isinstance(button.get("payload"), str):
                    payloads.add(button["payload"].strip())
    return payloads


async def _offered(tracker_store: Any, sender_id: str) -> set[str]:
    if tracker_store is None:
        return set()
    try:
        tracker = await tracker_store.retrieve(sender_id)
    except Exception:  # noqa: BLE001 - an unreadable tracker means nothing was offered
        logger.warning("Could not read the tracker to check a typed payload", exc_info=True)
        return set()
    return offered_payloads(tracker.events) if tracker is not None else set()


def tracker_store_of(app: Any) -> Any:
    """The running agent's tracker store (None before a model is loaded or in tests)."""
    agent = getattr(getattr(app, "ctx", None), "agent", None)
    return getattr(agent, "tracker_store", None)


async def deliver(
    on_new_message: OnNewMessage,
    text: object,
    output: OutputChannel,
    sender_id: str,
    input_channel: str,
    metadata: Mapping[str, Any] | None = None,
    *,
    tracker_store: Any = None,
    trusted: bool = False,
) -> None:
    """Apply the rules in the module docstring, then hand the message to Rasa.

    Args:
        on_new_message: Rasa's handler given to the channel's blueprint.
        text: The message as received.
        output: Where replies (and this module's own notes) go.
        sender_id: The conversation id, already checked by `bot.channels.sender`.
        input_channel: The channel's name.
        metadata: Channel metadata for the message.
        tracker_store: To read the buttons last offered; None trusts only open payloads.
        trusted: The text is a button press the platform vouches for, or a payload
            resolved from buttons this channel sent.

    Raises:
        BadMessage: `text` is not a string.
    """
    settings = get_settings()
    cleaned = clean_text(text)
    if cleaned.startswith("/") and not trusted and cleaned not in settings.open_payloads:
        if cleaned not in await _offered(tracker_store, sender_id):
            cleaned = cleaned.lstrip("/").strip()
    if not cleaned:
        await output.send_text_message(sender_id, DIDNT_CATCH)
        return
    extra = dict(metadata or {})
    # Only this function writes full_text: a client's own would reach the safety layer.
    extra.pop(FULL_TEXT_KEY, None)
    if len(cleaned) > settings.nlu_max_chars:
        extra[FULL_TEXT_KEY] = cleaned
        cleaned = cleaned[: settings.nlu_max_chars]
        await output.send_text_message(sender_id, TRUNCATED_NOTE.format(limit=settings.nlu_max_chars))
    await on_new_message(
        UserMessage(cleaned, output, sender_id, input_channel=input_channel, metadata=extra)
    )
