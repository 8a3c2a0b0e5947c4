"""How a message's `clinic` marker changes what a messaging channel sends.

Actions mark messages for the widget (`dispatcher.utter_message(..., clinic={...})`, see
the README's channel notes); Rasa hands the marker to every output channel's send methods
as a keyword argument. The widget renders each kind itself; Telegram and WhatsApp have
no such rendering, so the one kind that must still be told apart there, a staff member's
reply, is sent as "<name> (clinic staff): <text>". Everything else is sent unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CLINIC_KEY = "clinic"
"""Keyword (BotUttered metadata key) holding the marker."""


def marker_of(kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The message's marker, when it has a well-formed one."""
    marker = kwargs.get(CLINIC_KEY)
    if isinstance(marker, Mapping) and isinstance(marker.get("kind"), str):
        return dict(marker)
    return None


def messaging_text(text: str, kwargs: Mapping[str, Any]) -> str:
    """The text a messaging channel sends: staff replies carry who wrote them."""
    marker = marker_of(kwargs)
    if marker and marker["kind"] == "staff":
        name = str(marker.get("name") or "").strip() or "Clinic staff"
        return f"{name} (clinic staff): {text}"
    return text
