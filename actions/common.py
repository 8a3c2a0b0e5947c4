"""Small helpers every action module uses to talk to the patient."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

BOOK_BUTTON = {"title": "Book a consultation", "payload": "/book_appointment"}
HUMAN_BUTTON = {"title": "Talk to a person", "payload": "/request_human"}
URGENT_BUTTON = {"title": "When to get urgent help", "payload": "/ask_warning_signs"}


def send_bubbles(
    dispatcher: CollectingDispatcher,
    bubbles: Sequence[str],
    buttons: Optional[List[Dict[str, str]]] = None,
) -> None:
    """Send short messages in order; buttons go with the last one."""
    for index, text in enumerate(bubbles):
        last = index == len(bubbles) - 1
        if last and buttons:
            dispatcher.utter_message(text=text, buttons=buttons)
        else:
            dispatcher.utter_message(text=text)


def entity_values(tracker: Tracker, entity: str) -> List[Any]:
    """Values of `entity` in the latest user message, in order, without repeats."""
    values: List[Any] = []
    for item in tracker.latest_message.get("entities") or []:
        if item.get("entity") == entity and item.get("value") not in values:
            values.append(item.get("value"))
    return values


def latest_intent(tracker: Tracker) -> Optional[str]:
    """Name of the intent of the latest user message."""
    return (tracker.latest_message.get("intent") or {}).get("name")


def conversation_id(tracker: Tracker) -> str:
    """The conversation id staff see (channel-prefixed by the connectors)."""
    return tracker.sender_id
