"""A long conversation's recent turns, so each message costs the same at turn 100 as at turn 1.

Rasa 3.6 reloads the whole conversation session on every message, replays every event,
recomputes the dialogue states of all of them in each policy, and sends them all to the
action server: a 100-turn conversation answered each message twice as slowly as its first.
Prediction only needs the recent turns (the memoization policy looks 4 turns back, rules
fewer) and the slots' current values.

So for a session longer than `WINDOW_FROM_TURNS` user messages, the tracker store loads a
*window*: the last `TAIL_TURNS` user turns as stored, after a prefix that has the shape of
Rasa's own session start with slots carried over (`action_session_start`, `session_started`,
one `slot` event per slot set before the window, `action_listen`). The prefix is built by a
few indexed queries, never by reading the conversation. Its events are marked
(`metadata["clinic_window"]`) and never stored; the first one records how many stored events
the prefix stands for, so a save stores exactly the events added after the window (the
whole conversation stays in the database for the staff console and for Rasa's HTTP API,
which reads `retrieve_full_tracker`).

A window is not used when the cut would not be exact: a form still active at the cut, or an
event before it that rewinds, undoes, resets or pauses. Then the session loads whole.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

import sqlalchemy as sa
from sqlalchemy.orm import Query

TAIL_TURNS = 10
WINDOW_FROM_TURNS = 20
MARK = "clinic_window"
# events whose effect a "latest value per slot" snapshot does not reproduce
UNWINDOWABLE = ("restart", "rewind", "undo", "reset_slots", "pause", "resume")


def window_events(sql_event: Any, session_query: Query) -> Optional[List[Dict[str, Any]]]:
    """The session's window as event dicts (prefix + tail), or None to load it whole.

    `session_query` is Rasa's query of the latest session's events, ordered by id.
    """
    users = session_query.filter(sql_event.type_name == "user")
    if users.count() <= WINDOW_FROM_TURNS:
        return None
    first_user = (
        users.order_by(None).order_by(sql_event.id.desc()).with_entities(sql_event.id)
        .offset(TAIL_TURNS - 1).limit(1).scalar()
    )
    before = session_query.filter(sql_event.id < first_user)
    if before.filter(sql_event.type_name.in_(UNWINDOWABLE)).order_by(None).with_entities(sql_event.id).first():
        return None
    loop = (
        before.filter(sql_event.type_name == "active_loop").order_by(None)
        .order_by(sql_event.id.desc()).with_entities(sql_event.data).limit(1).scalar()
    )
    if loop is not None and json.loads(loop).get("name"):
        return None  # a form is running across the cut: its history matters
    cut = before.order_by(None).count()
    last_time = (
        before.order_by(None).order_by(sql_event.id.desc()).with_entities(sql_event.timestamp)
        .limit(1).scalar()
    )
    latest_slot_ids = [
        slot_id for (slot_id,) in before.filter(sql_event.type_name == "slot").order_by(None)
        .with_entities(sa.func.max(sql_event.id)).group_by(sql_event.action_name)
    ]
    slots = [
        json.loads(data)
        for (data,) in session_query.session.query(sql_event.data)
        .filter(sql_event.id.in_(latest_slot_ids)).order_by(sql_event.id)
    ]
    tail_rows = session_query.filter(sql_event.id >= first_user).with_entities(sql_event.data)
    tail = [json.loads(data) for (data,) in tail_rows]
    return prefix(cut, last_time, slots) + tail


def prefix(cut: int, last_time: Optional[float], slots: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Rasa's session start with `slots` carried over, marked as standing for `cut` events."""
    when = last_time or 0.0
    mark: Dict[str, Any] = {MARK: True}
    head: Dict[str, Any] = {MARK: {"cut": cut, "last_time": last_time}}
    return [
        {"event": "action", "name": "action_session_start", "timestamp": when, "metadata": head},
        {"event": "session_started", "timestamp": when, "metadata": mark},
        *({"event": "slot", "name": s["name"], "value": s.get("value"), "timestamp": when, "metadata": mark}
          for s in slots),
        {"event": "action", "name": "action_listen", "timestamp": when, "metadata": mark},
    ]


def _marked(event: Any) -> Any:
    return (getattr(event, "metadata", None) or {}).get(MARK)


def split(events: Sequence[Any]) -> Tuple[int, int, Optional[float], List[Any]]:
    """(prefix length, stored events it stands for, time of the last of them, real events)."""
    events = list(events)
    if not events or not isinstance(_marked(events[0]), dict):
        return 0, 0, None, list(events)
    head = _marked(events[0])
    length = 1
    while length < len(events) and _marked(events[length]) is True:
        length += 1
    return length, int(head["cut"]), head.get("last_time"), list(events[length:])


def stored_position(events: Sequence[Any]) -> int:
    """How many stored events the tracker's events amount to (the prefix counts as its cut)."""
    _, cut, _, real = split(events)
    return cut + len(real)


def unstored(
    events: Sequence[Any], stored: int, last_stored_time: Optional[float], same_time: Any
) -> Optional[List[Any]]:
    """The events past the `stored` ones, when the tracker's copy lines up with the store.

    `last_stored_time` is the timestamp of the last stored event; None is returned when the
    tracker's event at that position is another (the store changed meanwhile), so the
    caller compares event by event.
    """
    _, cut, cut_time, real = split(events)
    if not cut <= stored <= cut + len(real):
        return None
    if stored == 0:
        return real
    here = cut_time if stored == cut else real[stored - cut - 1].timestamp
    return real[stored - cut:] if same_time(here, last_stored_time) else None


def real_events(events: Sequence[Any]) -> List[Any]:
    """The tracker's events without a window's prefix."""
    return split(events)[3]


def events_from(events: Sequence[Any], position: int) -> List[Any]:
    """The tracker's real events from stored position `position` on."""
    _, cut, _, real = split(events)
    return real[max(0, position - cut):]
