"""The one rule for conversation (sender) ids, and which channel owns which namespace.

Every conversation id is `<channel prefix><local id>`, e.g. `telegram:7123456`. A channel
only ever writes ids under its own prefix, so a REST client cannot continue a WhatsApp
patient's booking by posting `"sender": "whatsapp:<phone>"`. The local id is checked here,
at the door, before anything reaches Rasa or the tracker store:

* 1 to 128 characters of printable ASCII `A-Z a-z 0-9 : _ . @ + -` (no spaces, no NUL or
  control characters, nothing a log line or a SQL `LIKE` could misread);
* so prefix + id stays far below the tracker store's 255-character `sender_id` column.
"""

from __future__ import annotations

import re

SENDER_ID_MAX_CHARS = 128
"""Longest local id (after the channel prefix) any channel accepts."""

SENDER_ID_RULE = "1-128 characters of A-Z a-z 0-9 : _ . @ + -"
"""The rule in words, for error messages and the README."""

_LOCAL_ID = re.compile(rf"[A-Za-z0-9:_.@+-]{{1,{SENDER_ID_MAX_CHARS}}}")

PREFIXES: dict[str, str] = {
    "rest": "rest:",
    "socketio": "web:",
    "telegram": "telegram:",
    "whatsapp": "whatsapp:",
    "twilio_whatsapp": "twilio:",
}
"""Channel name (`InputChannel.name()`) -> the prefix of every conversation it records."""

SHAPES: dict[str, re.Pattern[str]] = {
    "socketio": re.compile(r"[A-Za-z0-9_-]{8,64}"),
    "telegram": re.compile(r"-?[0-9]{1,20}"),
    "whatsapp": re.compile(r"[0-9]{5,20}"),
    "twilio_whatsapp": re.compile(r"whatsapp:\+[0-9]{5,20}"),
}
"""Stricter shapes of the ids a platform assigns (chat ids are integers, wa ids digits...)."""

RESERVED_NAMESPACES = frozenset(
    {"web", "telegram", "whatsapp", "twilio", "twilio_whatsapp", "socketio", "facebook",
     "slack", "messenger", "sms", "staff", "console", "cmdline"}
)
"""First segments a REST sender may not use: they name (or may one day name) another channel."""


class InvalidSenderId(ValueError):
    """A sender id breaks the rule; the message says why, safe to show the client."""


def check_local_id(local_id: object) -> str:
    """Return `local_id` if it follows the rule, else raise `InvalidSenderId`."""
    if not isinstance(local_id, str):
        raise InvalidSenderId(f"sender must be a string of {SENDER_ID_RULE}")
    if not _LOCAL_ID.fullmatch(local_id):
        raise InvalidSenderId(f"sender must be {SENDER_ID_RULE}")
    return local_id


def sender_id(channel: str, local_id: object) -> str:
    """Conversation id for `local_id` in `channel`'s namespace, checked against the rule.

    Args:
        channel: A key of `PREFIXES` (the channel's `name()`).
        local_id: The id the channel received (chat id, wa id, session id...).

    Returns:
        `<prefix><local_id>`.

    Raises:
        InvalidSenderId: `local_id` breaks the rule.
    """
    if isinstance(local_id, int) and not isinstance(local_id, bool):
        local_id = str(local_id)
    checked = check_local_id(local_id)
    shape = SHAPES.get(channel)
    if shape is not None and not shape.fullmatch(checked):
        raise InvalidSenderId(f"not a {channel} id: expected {shape.pattern}")
    return PREFIXES[channel] + checked


def rest_sender_id(requested: object) -> str:
    """Conversation id for a REST client's `sender`: always under `rest:`.

    `abc` becomes `rest:abc`, `rest:abc` stays itself, `crm:42` becomes `rest:crm:42`;
    a sender whose first segment names another channel (`whatsapp:...`, `web:...`) is
    refused rather than silently renamed, so a client notices its mistake.

    Raises:
        InvalidSenderId: The id breaks the rule or names another channel's namespace.
    """
    local_id = check_local_id(requested)
    head, colon, rest = local_id.partition(":")
    if colon and head.lower() == "rest":
        local_id = check_local_id(rest)
        head, colon, _ = local_id.partition(":")
    if colon and head.lower() in RESERVED_NAMESPACES | {"rest"}:
        raise InvalidSenderId(
            f"sender may not start with {head}: (another channel's conversations)"
        )
    return PREFIXES["rest"] + local_id


def local_id_of(channel: str, conversation_id: str) -> str:
    """The channel's own id back from a conversation id (e.g. the chat id to reply to)."""
    return conversation_id.removeprefix(PREFIXES[channel])
