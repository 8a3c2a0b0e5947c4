"""Build real rasa-sdk Trackers in memory (as rasa-sdk's own tests do) and run actions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

ROOT = Path(__file__).resolve().parent.parent
DOMAIN: Dict[str, Any] = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))


def tracker(
    text: str = "",
    intent: Optional[str] = None,
    entities: Optional[List[Dict[str, Any]]] = None,
    slots: Optional[Dict[str, Any]] = None,
    sender: str = "web:test-patient",
    active_loop: Optional[str] = None,
    ranking: Optional[List[Dict[str, Any]]] = None,
    events: Optional[List[Dict[str, Any]]] = None,
) -> Tracker:
    """A tracker whose latest user message is `text` with `intent` and `entities`."""
    all_slots = {name: None for name in DOMAIN["slots"]}
    all_slots.update({"requested_slot": None, **(slots or {})})
    message = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9} if intent else {},
        "entities": entities or [],
        "intent_ranking": ranking or ([{"name": intent, "confidence": 0.9}] if intent else []),
    }
    return Tracker(
        sender_id=sender,
        slots=all_slots,
        latest_message=message,
        events=events or [{"event": "user", "text": text, "parse_data": message}],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def run(action: Action, state: Tracker) -> tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Run an action; return (messages sent, events returned)."""
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, state, DOMAIN))
    return dispatcher.messages, list(events)


def texts(messages: List[Dict[str, Any]]) -> str:
    """All message texts joined, for assertions on what the patient reads."""
    return "\n".join(m.get("text") or "" for m in messages)


def has_event(events: List[Dict[str, Any]], **fields: Any) -> bool:
    """Whether an event with these fields was returned (timestamps ignored)."""
    return any(all(e.get(k) == v for k, v in fields.items()) for e in events)


def slot_events(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The slots set by `events`."""
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
