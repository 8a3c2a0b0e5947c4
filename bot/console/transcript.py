"""A conversation's tracker events turned into what staff read, line by line.

Reads the event dictionaries Rasa's SQL tracker store keeps (`events.data`): user messages
with the predicted intent, confidence and entities; bot replies with their buttons; the
button a patient pressed; form values (slot events); staff replies (BotUttered metadata
``clinic.kind == "staff"``, with the name); takeover and release (the `human_takeover`
slot and the ``staff_joined``/``staff_left`` markers). Feedback rows are merged in by time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from bot.storage.models import AnswerFeedback
from bot.storage.tracker_events import is_external

HIDDEN_SLOTS = {"requested_slot", "session_started_metadata"}
HIDDEN_ACTIONS = {"action_listen", "action_session_start"}


@dataclass
class Line:
    """One line of a transcript."""

    kind: str  # user, bot, staff, slot, takeover, release, loop, feedback, system
    timestamp: float
    text: str = ""
    event_id: int = 0
    intent: str | None = None
    confidence: float | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    buttons: list[dict[str, str]] = field(default_factory=list)
    pressed: str | None = None
    name: str | None = None
    value: Any = None
    channel: str | None = None

    @property
    def stamp(self) -> str:
        """The Rasa timestamp that identifies a user message (for NLU labels)."""
        return repr(self.timestamp)


def lines(events: Iterable[dict[str, Any]], feedback: Iterable[AnswerFeedback] = ()) -> list[Line]:
    """The transcript of these events (oldest first)."""
    result: list[Line] = []
    last_buttons: list[dict[str, str]] = []
    for event in events:
        data = event["data"]
        kind = data.get("event") or event["type"]
        timestamp = float(data.get("timestamp") or event.get("timestamp") or 0.0)
        if kind == "user" and is_external(data):
            continue  # a staff action (take over, reply, release), shown by its bot message
        if kind == "user":
            line = _user(data, timestamp, event["id"], last_buttons)
            result.append(line)
        elif kind == "bot":
            line = _bot(data, timestamp, event["id"])
            last_buttons = line.buttons
            result.append(line)
        elif kind == "slot":
            name = str(data.get("name"))
            if name == "human_takeover":
                result.append(Line("takeover" if data.get("value") else "release", timestamp,
                                   event_id=event["id"]))
            elif name not in HIDDEN_SLOTS and data.get("value") is not None:
                result.append(Line("slot", timestamp, name=name, value=data.get("value"),
                                   event_id=event["id"]))
        elif kind == "active_loop" and data.get("name"):
            result.append(Line("loop", timestamp, name=str(data["name"]), event_id=event["id"]))
        elif kind in ("restart", "session_started"):
            result.append(Line("system", timestamp, text="New session" if kind == "session_started"
                               else "Conversation restarted", event_id=event["id"]))
    for row in feedback:
        result.append(Line("feedback", row.created_at.timestamp(), name=row.topic,
                           value=bool(row.helpful), text=row.comment or ""))
    result.sort(key=lambda line: (line.timestamp, line.event_id))
    # the slot and the widget's staff_joined/left marker say the same thing: keep the named one
    def doubled(i: int, line: Line) -> bool:
        neighbours = result[max(i - 1, 0):i] + result[i + 1:i + 2]
        return line.kind in ("takeover", "release") and not line.name and any(
            other.kind == line.kind and other.name for other in neighbours)

    return [line for i, line in enumerate(result) if not doubled(i, line)]


def taken_over(transcript: list[Line]) -> bool:
    """Whether staff hold the conversation now (the last takeover or release wins)."""
    for line in reversed(transcript):
        if line.kind in ("takeover", "release"):
            return line.kind == "takeover"
    return False


def _user(data: dict[str, Any], timestamp: float, event_id: int,
          last_buttons: list[dict[str, str]]) -> Line:
    parse = data.get("parse_data") or {}
    intent = parse.get("intent") or {}
    text = str(data.get("text") or "")
    pressed = next((b["title"] for b in last_buttons if b.get("payload") == text), None)
    entities = [
        {"entity": str(e.get("entity")), "value": e.get("value")}
        for e in parse.get("entities") or [] if isinstance(e, dict)
    ]
    confidence = intent.get("confidence")
    return Line("user", timestamp, text=text, event_id=event_id, intent=intent.get("name"),
                confidence=float(confidence) if isinstance(confidence, (int, float)) else None,
                entities=entities, pressed=pressed, channel=data.get("input_channel"))


def _bot(data: dict[str, Any], timestamp: float, event_id: int) -> Line:
    payload = data.get("data") or {}
    buttons = [
        {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
        for b in (payload.get("buttons") or payload.get("quick_replies") or [])
        if isinstance(b, dict)
    ]
    clinic = (data.get("metadata") or {}).get("clinic") or {}
    kind = clinic.get("kind") if isinstance(clinic, dict) else None
    text = str(data.get("text") or "")
    if kind == "staff":
        return Line("staff", timestamp, text=text, event_id=event_id, name=clinic.get("name"))
    if kind in ("staff_joined", "staff_left"):
        return Line("takeover" if kind == "staff_joined" else "release", timestamp, text=text,
                    event_id=event_id, name=clinic.get("name"))
    return Line("bot", timestamp, text=text, event_id=event_id, buttons=buttons,
                name=kind if isinstance(kind, str) else None)
