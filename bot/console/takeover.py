"""The console's side of "reply as a person": calls `bot.handoff` and reports delivery.

`bot.handoff` (the relay) owns taking over, releasing and sending a staff reply; each
returns a `Delivery(delivered, reason)`. This module turns an unexpected exception into
an outcome with a sentence for the staff member, so a page never fails with a stack trace
when the patient cannot be reached. The module is passed in (the app holds `bot.handoff`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Outcome:
    """What happened, in words for the staff member."""

    delivered: bool
    reason: str | None = None


def _call(module: Any, name: str, *args: Any, **kwargs: Any) -> Outcome:
    try:
        result = getattr(module, name)(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - shown to staff instead of a crash
        return Outcome(False, f"The assistant could not be reached ({type(exc).__name__}). "
                              "Try again in a moment, or call the patient.")
    return Outcome(bool(result.delivered), result.reason)


def take(module: Any, conversation_id: str, by: str) -> Outcome:
    """Silence the bot in this conversation; staff reply."""
    return _call(module, "take", conversation_id, by=by)


def release(module: Any, conversation_id: str, by: str) -> Outcome:
    """Give the conversation back to the bot."""
    return _call(module, "release", conversation_id, by=by)


def reply(module: Any, conversation_id: str, text: str, staff_name: str) -> Outcome:
    """Send a staff member's message to the patient on their channel."""
    return _call(module, "send_staff_reply", conversation_id, text, staff_name)


def reachability(module: Any, conversation_id: str) -> Outcome:
    """Whether a reply would reach the patient now (shown above the reply box)."""
    return _call(module, "reachability", conversation_id)
