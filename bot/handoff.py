"""Staff take a conversation over, reply to the patient as themselves, and give it back.

What the staff console (and this command line) calls; every function answers with a
`Delivery`: whether the patient was reached and, when not, a sentence for the staff member.

* `take` triggers the `staff_take` intent through Rasa's HTTP API
  (`POST /conversations/<id>/trigger_intent?output_channel=latest`, with the API token):
  `action_staff_joined` (actions/staff.py) sets `human_takeover`, so `HumanTakeoverPolicy`
  keeps the bot silent, and the patient sees "<name> from the clinic has joined the chat"
  on the channel they last wrote from. The handoff request is marked taken.
* `send_staff_reply` triggers `staff_reply` with the staff member's name and text:
  `action_relay_staff_reply` says it, marked as staff (widget marker; Telegram and WhatsApp
  get "<name> (clinic staff): <text>").
* `release` triggers `staff_release`: the bot answers again, the patient is told.
* `reachability` says whether a reply would reach the patient now. Nothing is sent when:
  WhatsApp (Cloud or Twilio) and the patient's last message is over 24 hours old (Meta's
  customer service window); the widget and no browser is connected to the conversation
  (the socket.io channel's presence route); REST, which only answers within a request
  (the test channel: a later reply has nowhere to go); Rasa cannot be reached. When the
  patient cannot be told, `take` and `release` still pause or resume the bot (through a
  slot event, which sends nothing) and say so in the reason.

    python -m bot.handoff list
    python -m bot.handoff take web:abc123 --by "Nurse Lee"
    python -m bot.handoff reply web:abc123 --by "Nurse Lee" "Hello, I'm looking at your question now."
    python -m bot.handoff release web:abc123 --by "Nurse Lee"
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Sequence

import requests

from bot.clock import now
from bot.settings import get_settings, rasa_api_token
from bot.storage.repository import HandoffRecord, Repository

WHATSAPP_WINDOW = timedelta(hours=24)
"""Meta's customer service window: a business may write freely only this long after the
patient's last message (templates aside, which a free-text staff reply is not)."""

REPLY_MAX_CHARS = 4000
"""Longest staff reply: within every channel's single-message limit (Telegram 4096)."""

TIMEOUT_SECONDS = 15
WHATSAPP_CHANNELS = frozenset({"whatsapp", "twilio_whatsapp"})
REPLYABLE_CHANNELS = frozenset({"socketio", "telegram", *WHATSAPP_CHANNELS})
"""Channels (`InputChannel.name()`) a staff message can reach after the patient's turn."""

RASA_DOWN = (
    "The assistant (Rasa) cannot be reached right now, so nothing was sent. Try again in a "
    "minute; if it keeps failing, phone the patient."
)
REST_ONLY = (
    "This conversation came through the REST test channel, which only answers within its "
    "own request: a message sent later has no way to reach it."
)
NO_PATIENT = "The patient has not written in this conversation yet, so there is nowhere to send it."
TAB_CLOSED = (
    "The patient has closed the chat (no browser is connected to this conversation), so the "
    "message cannot reach them. Phone them if they left a number."
)
EMPTY_REPLY = "The reply is empty: nothing was sent."
TOO_LONG = f"The reply is longer than {REPLY_MAX_CHARS:,} characters: please shorten it."


@dataclass(frozen=True)
class Delivery:
    """Whether the patient was (or can be) reached; if not, why, for the staff member."""

    delivered: bool
    reason: Optional[str] = None


REACHABLE = Delivery(True, None)


class RasaUnavailable(RuntimeError):
    """Rasa's HTTP API did not answer, or refused the token."""


def _rasa(
    method: str,
    path: str,
    rasa_url: Optional[str] = None,
    params: Optional[Dict[str, str]] = None,
    body: Any = None,
) -> Any:
    """Call Rasa's HTTP API with the token; the JSON answer, or `RasaUnavailable`."""
    url = f"{rasa_url or get_settings().rasa_url}{path}"
    try:
        response = requests.request(
            method,
            url,
            params={"token": rasa_api_token(), **(params or {})},
            json=body,
            timeout=TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        raise RasaUnavailable(f"{type(exc).__name__} calling {path}") from exc
    if response.status_code >= 400:
        raise RasaUnavailable(f"HTTP {response.status_code} from {path}")
    return response.json()


def set_takeover(conversation_id: str, active: bool, rasa_url: Optional[str] = None) -> None:
    """Set or clear `human_takeover` without telling the patient (raises `RasaUnavailable`)."""
    _rasa(
        "POST",
        f"/conversations/{conversation_id}/tracker/events",
        rasa_url,
        body=[{"event": "slot", "name": "human_takeover", "value": active}],
    )


def _trigger(
    conversation_id: str, intent: str, entities: Dict[str, str], rasa_url: Optional[str]
) -> Delivery:
    """Trigger a staff intent on the patient's latest channel; REACHABLE when it went out."""
    answer = _rasa(
        "POST",
        f"/conversations/{conversation_id}/trigger_intent",
        rasa_url,
        params={"output_channel": "latest"},
        body={"name": intent, "entities": entities},
    )
    if isinstance(answer, dict) and "messages" in answer:
        # Rasa found no enabled channel for `latest` and collected the messages instead.
        return Delivery(False, "The channel this patient used is not enabled any more, so "
                               "the message could not be sent.")
    return REACHABLE


def last_patient_message_at(events: Sequence[Dict[str, Any]]) -> Optional[datetime]:
    """When the patient last wrote (staff triggers, which are external events, excluded)."""
    for event in reversed(events):
        if event.get("event") != "user":
            continue
        if (event.get("metadata") or {}).get("is_external"):
            continue
        stamp = event.get("timestamp")
        if isinstance(stamp, (int, float)):
            return datetime.fromtimestamp(stamp, tz=timezone.utc)
    return None


def reach_of(tracker: Dict[str, Any], connected: Optional[bool] = None) -> Delivery:
    """Whether a staff message would reach the patient, from the tracker (as the API shows it).

    Args:
        tracker: Rasa's tracker JSON.
        connected: For the widget: whether a browser is connected (None: not asked).
    """
    channel = tracker.get("latest_input_channel")
    last = last_patient_message_at(tracker.get("events") or [])
    if not channel or last is None:
        return Delivery(False, NO_PATIENT)
    if channel == "rest":
        return Delivery(False, REST_ONLY)
    if channel not in REPLYABLE_CHANNELS:
        return Delivery(False, f"Staff messages cannot be sent on this conversation's channel ({channel}).")
    if channel in WHATSAPP_CHANNELS:
        if now() - last > WHATSAPP_WINDOW:
            return Delivery(
                False,
                "WhatsApp only lets the clinic reply within 24 hours of the patient's last "
                f"message, and theirs was on {last:%d %b %Y at %H:%M} UTC: nothing was sent. "
                "Phone them, or wait until they write again.",
            )
        return REACHABLE
    if channel == "socketio" and not connected:
        return Delivery(False, TAB_CLOSED)
    return REACHABLE


def reachability(conversation_id: str, rasa_url: Optional[str] = None) -> Delivery:
    """Whether a staff message sent now would reach the patient (nothing is sent)."""
    try:
        tracker = _rasa("GET", f"/conversations/{conversation_id}/tracker", rasa_url)
        connected = None
        if tracker.get("latest_input_channel") == "socketio":
            presence = _rasa(
                "GET",
                "/webhooks/socketio/presence",
                rasa_url,
                params={"conversation_id": conversation_id},
            )
            connected = bool(presence.get("connected"))
    except RasaUnavailable:
        return Delivery(False, RASA_DOWN)
    return reach_of(tracker, connected)


def _handoffs_for(repo: Repository, conversation_id: str) -> List[HandoffRecord]:
    return [h for h in repo.open_handoffs(("open", "taken", "released")) if h.conversation_id == conversation_id]


def _switch(conversation_id: str, by: str, active: bool, rasa_url: Optional[str]) -> Delivery:
    """Pause (active) or resume the bot, telling the patient when they can be reached."""
    reach = reachability(conversation_id, rasa_url)
    try:
        if reach.delivered:
            intent = "staff_take" if active else "staff_release"
            reach = _trigger(conversation_id, intent, {"staff_name": by}, rasa_url)
            if reach.delivered:
                return reach
        if reach.reason == RASA_DOWN:
            return reach
        set_takeover(conversation_id, active, rasa_url)
    except RasaUnavailable:
        return Delivery(False, RASA_DOWN)
    state = "paused" if active else "answering again"
    return Delivery(False, f"{reach.reason} The assistant is {state} for this conversation all the same.")


def take(conversation_id: str, by: str, rasa_url: Optional[str] = None) -> Delivery:
    """Silence the bot for this conversation, tell the patient `by` joined, mark the handoff taken."""
    delivery = _switch(conversation_id, by, True, rasa_url)
    if delivery.reason != RASA_DOWN:
        repo = Repository()
        for handoff in _handoffs_for(repo, conversation_id):
            repo.set_handoff_status(handoff.id, "taken", taken_by=by)
    return delivery


def release(conversation_id: str, by: str, rasa_url: Optional[str] = None) -> Delivery:
    """Let the bot answer this conversation again and tell the patient `by` has left."""
    delivery = _switch(conversation_id, by, False, rasa_url)
    if delivery.reason != RASA_DOWN:
        repo = Repository()
        for handoff in _handoffs_for(repo, conversation_id):
            if handoff.status == "taken":
                repo.set_handoff_status(handoff.id, "released")
    return delivery


def send_staff_reply(
    conversation_id: str, text: str, staff_name: str, rasa_url: Optional[str] = None
) -> Delivery:
    """Send `text` to the patient as `staff_name`, on their channel, if it can reach them."""
    text = (text or "").strip()
    if not text:
        return Delivery(False, EMPTY_REPLY)
    if len(text) > REPLY_MAX_CHARS:
        return Delivery(False, TOO_LONG)
    reach = reachability(conversation_id, rasa_url)
    if not reach.delivered:
        return reach
    try:
        return _trigger(
            conversation_id, "staff_reply", {"staff_name": staff_name, "staff_text": text}, rasa_url
        )
    except RasaUnavailable:
        return Delivery(False, RASA_DOWN)


def _print(conversation_id: str, done: str, delivery: Delivery) -> int:
    if delivery.delivered:
        print(f"{conversation_id}: {done}")
        return 0
    print(f"{conversation_id}: {delivery.reason}")
    return 0 if "all the same" in (delivery.reason or "") else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line for staff."""
    parser = argparse.ArgumentParser(description="Take over, reply to or release a patient conversation.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="open handoff requests")
    take_cmd = sub.add_parser("take", help="silence the bot; the patient is told you joined")
    take_cmd.add_argument("conversation_id")
    take_cmd.add_argument("--by", required=True, help="who takes it (shown to the patient)")
    reply_cmd = sub.add_parser("reply", help="send the patient a message as yourself")
    reply_cmd.add_argument("conversation_id")
    reply_cmd.add_argument("--by", required=True, help="your name (shown to the patient)")
    reply_cmd.add_argument("text")
    release_cmd = sub.add_parser("release", help="let the bot answer again")
    release_cmd.add_argument("conversation_id")
    release_cmd.add_argument("--by", default="A member of our staff", help="who leaves (shown to the patient)")
    args = parser.parse_args(argv)
    if args.command == "list":
        for h in Repository().open_handoffs():
            when = "in hours" if h.within_hours else "out of hours"
            print(f"#{h.id} {h.status:8} {h.conversation_id} ({when}) {h.reason}")
        return 0
    if args.command == "take":
        return _print(args.conversation_id, f"taken over by {args.by}; the bot is silent",
                      take(args.conversation_id, args.by))
    if args.command == "reply":
        return _print(args.conversation_id, "reply sent",
                      send_staff_reply(args.conversation_id, args.text, args.by))
    return _print(args.conversation_id, "released; the bot answers again",
                  release(args.conversation_id, args.by))


if __name__ == "__main__":
    raise SystemExit(main())
