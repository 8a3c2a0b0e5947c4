"""Keep what patients type out of Rasa's own warnings and logs.

A message starting with "/" is parsed by Rasa as an intent with JSON entities; when that
fails, Rasa 3.6 echoes the whole message (names, phone numbers) in a Python warning
("Failed to parse arguments in line '...'") and in a structlog event
("message.parsing.failed", user_text=...). The Rasa server calls `install_log_privacy()`
once at start-up (from the conversation store, the first project code Rasa loads): the
warnings are dropped and `user_text` in structured logs is replaced by its length.
Nothing else in Rasa's logging changes.
"""

from __future__ import annotations

import warnings
from typing import Any, MutableMapping

import structlog

WITHHELD_KEYS = ("user_text",)
RASA_ECHOING_WARNING = r"Failed to parse arguments in line"


def withhold_user_text(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Structlog processor: replace what the user typed by a placeholder."""
    for key in WITHHELD_KEYS:
        if key in event:
            event[key] = f"<withheld: {len(str(event[key]))} characters>"
    return event


def install_log_privacy() -> None:
    """Drop Rasa's echoing warnings and withhold user text in structlog (idempotent)."""
    warnings.filterwarnings("ignore", message=RASA_ECHOING_WARNING)
    # Bound loggers share the configured processor list, so an in-place insert also
    # covers loggers Rasa has already used (structlog caches them on first use).
    processors = structlog.get_config()["processors"]
    if withhold_user_text not in processors:
        processors.insert(0, withhold_user_text)
