"""Human handoff: staff reply here in opening hours; outside them, offer a call back.

A handoff request (with the last topic and, only with consent, contact details) is stored
for staff and notified. Staff take a conversation over by setting the `human_takeover`
slot (see bot/handoff.py); `HumanTakeoverPolicy` then keeps the bot silent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import BOOK_BUTTON, conversation_id
from bot.clock import now
from bot.profile import get_profile
from bot.records import SPOOLED, save_handoff

DEFAULT_REASON = "the patient asked to talk to a person"


def _contact(tracker: Tracker) -> Dict[str, Any]:
    """Contact details for staff, only when the patient consented to storing them."""
    if tracker.get_slot("contact_consent") is not True:
        return {}
    return {
        "contact_name": tracker.get_slot("full_name"),
        "contact_phone": tracker.get_slot("phone"),
        "contact_consented": True,
        "contact_consent_at": _consent_at(tracker),
    }


def _consent_at(tracker: Tracker) -> Optional[datetime]:
    """When the patient agreed to their contact details being stored (slot `consent_at`)."""
    value = tracker.get_slot("consent_at")
    try:
        return datetime.fromisoformat(value) if value else now()
    except (TypeError, ValueError):
        return now()


class ActionRequestHuman(Action):
    """Hand the conversation to staff, according to opening hours."""

    def name(self) -> str:
        """Action name used by the request_human rule."""
        return "action_request_human"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[EventType]:
        """Store the handoff (or first offer a call back when the clinic is closed)."""
        profile = get_profile()
        current = now()
        within = profile.is_open(current)
        callback = bool(tracker.get_slot("callback_requested"))
        declined = bool(tracker.get_slot("callback_declined"))
        if not within and not callback and not declined:
            opening = profile.next_opening(current)
            when = f" We open again {opening:%A at %H:%M}." if opening else ""
            dispatcher.utter_message(
                text=f"Our clinic is closed right now.{when} Would you like us to call you back "
                "when we're open? I'd need your name and mobile number.",
                buttons=[
                    {"title": "Yes, call me back", "payload": "/request_callback"},
                    {"title": "No, thanks", "payload": "/deny"},
                ],
            )
            return [SlotSet("offer", "callback")]
        contact = _contact(tracker) if callback else {}
        saved = await save_handoff(
            conversation_id=conversation_id(tracker),
            reason=tracker.get_slot("handoff_reason") or DEFAULT_REASON,
            within_hours=within,
            last_topic=tracker.get_slot("last_topic"),
            callback_requested=bool(contact),
            **contact,
        )
        dispatcher.utter_message(
            text=self._message(within, bool(contact), saved == SPOOLED),
            buttons=[BOOK_BUTTON],
        )
        return [
            SlotSet("handoff_reason", None),
            SlotSet("callback_requested", None),
            SlotSet("callback_declined", None),
            SlotSet("offer", None),
        ]

    @staticmethod
    def _message(within: bool, callback: bool, spooled: bool) -> str:
        profile = get_profile()
        phone = profile.phone_text()
        if spooled:
            return (
                "I'm having a technical problem passing this on right now; it has been kept and "
                f"will reach our staff as soon as possible. To be sure, please call {phone}."
            )
        if callback:
            when = "as soon as they can" if within else "when the clinic opens"
            return f"Thank you. Our staff will call you back {when}."
        if within:
            closing: Optional[Any] = profile.closing_today(now())
            until = f" (we're open until {closing:%H:%M} today)" if closing else ""
            return (
                f"I've asked our staff to join this conversation. Someone will reply here "
                f"shortly{until}. You can also call {phone}."
            )
        return (
            "No problem. I've left a note for our staff, who will read this conversation when "
            f"the clinic opens. You can also call {phone} during opening hours."
        )
