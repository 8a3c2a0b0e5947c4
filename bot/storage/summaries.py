"""One row per conversation for the staff console's list, kept up to date as events are stored.

The console lists, filters and searches `conversation_summaries` instead of reading
every event per page view (it must stay fast at 100,000 conversations). The tracker
store (`bot.tracker_store.ClinicTrackerStore.save`) hands each saved conversation to a
`SummaryWriter`, which folds only the events it has not seen yet (`events_seen`) into
the row, in one background thread: a save never waits for it and never fails because
of it; a summary error is logged with the error's class name only (no personal data).

`fold` is the pure part: events (as Rasa stores them) in, summary state out. Names come
from domain.yml: `ask_<topic>` intents are topics; `red_flags_detected` (set by
`action_red_flag`) and `red_flag` entities are flags, split into crisis and the rest by
the safety data's categories; `booking_reference` is set when a booking was stored;
`action_request_human` is a hand-off; `nlu_fallback`, `action_default_fallback` and
`action_clarify` are "not understood"; `action_save_feedback` stores a thumbs down; a
bot message marked ``clinic.kind == "staff"`` is a staff reply; `human_takeover` is the
current takeover.

Rebuild everything from the events table (after an upgrade, or to repair)::

    python -m bot.storage.summaries backfill
"""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from bot.storage.models import UTC, ConversationSummary
from bot.storage.tracker_events import EVENTS, decode, is_external
from bot.validation import MAX_SEARCH_TEXT, MAX_TOPICS

logger = logging.getLogger(__name__)

CHANNELS = {"web": "web", "rest": "rest", "telegram": "telegram", "whatsapp": "whatsapp", "twilio": "twilio"}
"""Sender id prefix (before the first ':') -> channel; see bot/channels/sender.py."""
OTHER_CHANNEL = "other"
TOPIC_PREFIX = "ask_"
NOT_TOPICS = frozenset({"ask_capabilities", "ask_side_effects"})  # not article topics
NOT_UNDERSTOOD_INTENTS = frozenset({"nlu_fallback"})
NOT_UNDERSTOOD_ACTIONS = frozenset({"action_default_fallback", "action_clarify"})
HANDOFF_ACTIONS = frozenset({"action_request_human"})
THUMBS_DOWN_ACTIONS = frozenset({"action_save_feedback"})
RED_FLAG_SLOT = "red_flags_detected"
RED_FLAG_ENTITY = "red_flag"
BOOKING_SLOT = "booking_reference"
TAKEOVER_SLOT = "human_takeover"
STAFF_KIND = "staff"
BATCH = 500  # events read per query while folding


@dataclass(frozen=True)
class Summary:
    """What the console shows of one conversation (the computed columns of the row)."""

    conversation_id: str
    channel: str
    started_at: datetime | None = None
    last_event_at: datetime | None = None
    last_user_message_at: datetime | None = None
    turns: int = 0
    events_seen: int = 0
    topics: str = ""
    red_flag: bool = False
    crisis: bool = False
    booking: bool = False
    handoff: bool = False
    not_understood: bool = False
    thumbs_down: bool = False
    staff_replied: bool = False
    taken_over: bool = False
    search_text: str = ""


COMPUTED = tuple(f.name for f in fields(Summary))


def channel_of(conversation_id: str) -> str:
    """The channel a conversation came from, by its sender id's prefix."""
    prefix = conversation_id.split(":", 1)[0] if ":" in conversation_id else ""
    return CHANNELS.get(prefix, OTHER_CHANNEL)


def empty(conversation_id: str) -> Summary:
    """The summary of a conversation without events yet."""
    return Summary(conversation_id=conversation_id, channel=channel_of(conversation_id))


def _when(event: Mapping[str, Any]) -> datetime | None:
    stamp = event.get("timestamp")
    if not isinstance(stamp, (int, float)):
        return None
    return datetime.fromtimestamp(float(stamp), UTC)


def _add_topic(topics: str, intent: str | None) -> str:
    if not intent or not intent.startswith(TOPIC_PREFIX) or intent in NOT_TOPICS:
        return topics
    topic = intent[len(TOPIC_PREFIX):]
    keys = [key for key in topics.split(",") if key]
    if topic in keys:
        return topics
    joined = ",".join([*keys, topic])
    return joined if len(joined) <= MAX_TOPICS else topics


def _clinic_kind(event: Mapping[str, Any]) -> str | None:
    for holder in (event.get("metadata"), (event.get("data") or {}).get("custom")):
        if isinstance(holder, Mapping) and isinstance(holder.get("clinic"), Mapping):
            kind = holder["clinic"].get("kind")
            return str(kind) if kind is not None else None
    return None


def _flag_kinds(flags: Iterable[Any], crisis_flags: frozenset[str]) -> tuple[bool, bool]:
    """(any non-crisis flag, any crisis flag) among `flags`."""
    keys = {str(flag) for flag in flags if flag}
    return bool(keys - crisis_flags), bool(keys & crisis_flags)


def fold(
    summary: Summary, events: Iterable[Mapping[str, Any]], crisis_flags: frozenset[str]
) -> Summary:
    """Return `summary` with `events` (Rasa event dicts, in order) folded in.

    Args:
        summary: What is known so far (`empty(...)` for a new conversation).
        events: The events not folded yet, oldest first.
        crisis_flags: Flag keys whose category is ``crisis`` (`crisis_flags_from_data`).

    Returns:
        The new summary; `events_seen` grows by the number of events.
    """
    state: dict[str, Any] = {name: getattr(summary, name) for name in COMPUTED}
    texts: list[str] = [state["search_text"]] if state["search_text"] else []
    length = len(state["search_text"])
    for event in events:
        state["events_seen"] += 1
        when = _when(event)
        if when is not None:
            if state["started_at"] is None or when < state["started_at"]:
                state["started_at"] = when
            if state["last_event_at"] is None or when > state["last_event_at"]:
                state["last_event_at"] = when
        kind = event.get("event")
        if kind == "user" and is_external(event):
            continue  # a staff action, not a patient message
        if kind == "user":
            state["turns"] += 1
            if when is not None:
                state["last_user_message_at"] = when
            parse = event.get("parse_data") or {}
            intent = (parse.get("intent") or {}).get("name")
            state["topics"] = _add_topic(state["topics"], intent)
            if intent in NOT_UNDERSTOOD_INTENTS:
                state["not_understood"] = True
            entity_flags = [
                e.get("value") for e in parse.get("entities") or [] if e.get("entity") == RED_FLAG_ENTITY
            ]
            red, crisis = _flag_kinds(entity_flags, crisis_flags)
            state["red_flag"] |= red
            state["crisis"] |= crisis
            text = event.get("text")
            if isinstance(text, str) and text.strip() and length < MAX_SEARCH_TEXT:
                piece = text.strip()[: MAX_SEARCH_TEXT - length]
                texts.append(piece)
                length += len(piece) + 1
        elif kind == "action":
            name = event.get("name")
            state["not_understood"] |= name in NOT_UNDERSTOOD_ACTIONS
            state["handoff"] |= name in HANDOFF_ACTIONS
            state["thumbs_down"] |= name in THUMBS_DOWN_ACTIONS
        elif kind == "slot":
            name, value = event.get("name"), event.get("value")
            if name == RED_FLAG_SLOT and isinstance(value, list):
                red, crisis = _flag_kinds(value, crisis_flags)
                state["red_flag"] |= red
                state["crisis"] |= crisis
            elif name == BOOKING_SLOT and value:
                state["booking"] = True
            elif name == TAKEOVER_SLOT:
                state["taken_over"] = value is True
        elif kind == "bot" and _clinic_kind(event) == STAFF_KIND:
            state["staff_replied"] = True
    state["search_text"] = "\n".join(texts)[:MAX_SEARCH_TEXT]
    return replace(summary, **state)


def crisis_flags_from_data() -> frozenset[str]:
    """Flag keys of the ``crisis`` category in data/safety/flags.yml."""
    from bot.safety.data import get_safety_data

    return frozenset(key for key, flag in get_safety_data().flags.items() if flag.category == "crisis")


def _summary_of(row: ConversationSummary) -> Summary:
    return Summary(**{name: getattr(row, name) for name in COMPUTED})


def _new_events(session: Session, conversation_id: str, seen: int) -> Iterable[dict[str, Any]]:
    offset = seen
    while True:
        rows = session.execute(
            sa.select(EVENTS.c.data)
            .where(EVENTS.c.sender_id == conversation_id)
            .order_by(EVENTS.c.id)
            .offset(offset)
            .limit(BATCH)
        ).scalars().all()
        for data in rows:
            yield decode(data)
        if len(rows) < BATCH:
            return
        offset += len(rows)


def refresh(
    session: Session, conversation_id: str, crisis_flags: frozenset[str], *, rebuild: bool = False
) -> Summary | None:
    """Fold the conversation's new events into its row (created when missing) and commit.

    Args:
        session: A session on the database holding both `events` and the summaries.
        conversation_id: The sender id.
        crisis_flags: See `fold`.
        rebuild: Start from no events (backfill); staff's tags and review are kept.

    Returns:
        The summary, or None when the conversation has no events.
    """
    row = session.get(ConversationSummary, conversation_id)
    before = empty(conversation_id) if row is None or rebuild else _summary_of(row)
    after = fold(before, _new_events(session, conversation_id, before.events_seen), crisis_flags)
    if after == before and row is not None:
        return after
    if after.started_at is None or after.last_event_at is None:
        return None
    if row is None:
        row = ConversationSummary(conversation_id=conversation_id, tags="")
        session.add(row)
    for name in COMPUTED:
        setattr(row, name, getattr(after, name))
    session.commit()
    return after


class SummaryWriter:
    """Keeps summaries up to date in one background thread, off the save path.

    Args:
        engine: The tracker store's engine (same database as the summaries).
        crisis_flags: A function returning the crisis flag keys (read once, lazily).
    """

    def __init__(self, engine: sa.engine.Engine, crisis_flags: Callable[[], frozenset[str]] = crisis_flags_from_data):
        """Nothing runs until the first `submit`."""
        self._sessions = sessionmaker(bind=engine)
        self._engine = engine
        self._crisis_source = crisis_flags
        self._crisis: frozenset[str] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="summaries")
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._available: bool | None = None

    def submit(self, conversation_id: str) -> None:
        """Bring this conversation's summary up to date soon; returns at once, never raises."""
        try:
            with self._lock:
                if conversation_id in self._queued:
                    return  # the queued update will read these events too
                self._queued.add(conversation_id)
            self._executor.submit(self._update, conversation_id)
        except Exception as exc:  # noqa: BLE001 - e.g. interpreter shutting down
            logger.warning("conversation summary not queued (%s)", type(exc).__name__)

    def wait(self) -> None:
        """Block until every queued update has run (tests, backfill, shutdown)."""
        self._executor.submit(lambda: None).result()

    def close(self) -> None:
        """Finish queued updates and stop the thread."""
        self._executor.shutdown(wait=True)

    def _ready(self) -> bool:
        if self._available is None:
            self._available = sa.inspect(self._engine).has_table(ConversationSummary.__tablename__)
            if not self._available:
                logger.warning(
                    "no conversation_summaries table (run python -m bot.storage.migrate): "
                    "the console's conversation list will not be updated"
                )
        return self._available

    def _update(self, conversation_id: str) -> None:
        with self._lock:
            self._queued.discard(conversation_id)
        try:
            if not self._ready():
                return
            if self._crisis is None:
                self._crisis = self._crisis_source()
            with self._sessions() as session:
                refresh(session, conversation_id, self._crisis)
        except Exception as exc:  # noqa: BLE001 - a summary must never hurt a conversation
            orig = getattr(exc, "orig", None)
            kind = f"{type(exc).__name__}/{type(orig).__name__}" if orig is not None else type(exc).__name__
            logger.warning("conversation summary not updated (%s); the next save retries", kind)


def backfill(engine: sa.engine.Engine, crisis_flags: frozenset[str] | None = None) -> int:
    """Rebuild every conversation's summary from the events table; returns how many rows.

    Summaries of conversations whose events are gone are deleted.
    """
    flags = crisis_flags if crisis_flags is not None else crisis_flags_from_data()
    sessions = sessionmaker(bind=engine)
    with sessions() as session:
        senders = list(session.execute(sa.select(EVENTS.c.sender_id).distinct()).scalars())
        gone = ~sa.exists().where(EVENTS.c.sender_id == ConversationSummary.conversation_id)
        session.execute(sa.delete(ConversationSummary).where(gone).execution_options(synchronize_session=False))
        session.commit()
    written = 0
    for sender in senders:
        with sessions() as session:
            if refresh(session, sender, flags, rebuild=True) is not None:
                written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m bot.storage.summaries backfill``: rebuild the table from the events."""
    parser = argparse.ArgumentParser(prog="python -m bot.storage.summaries", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("backfill", help="rebuild conversation_summaries from the tracker store's events")
    parser.parse_args(argv)
    from bot.settings import get_settings
    from bot.storage.database import create_engine_for

    engine = create_engine_for(get_settings().database_url)
    try:
        count = backfill(engine)
    finally:
        engine.dispose()
    print(f"rebuilt {count} conversation summaries")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
