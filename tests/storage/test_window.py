"""A long conversation is loaded as its recent turns, and stored whole, on SQLite and PostgreSQL.

The store is the real `ClinicTrackerStore` with the project's domain; what is checked is
what Rasa and the staff would see: the slots and recent turns the loaded tracker holds,
and the rows of the `events` table after the next turn is saved.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List

import pytest
import sqlalchemy as sa
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, Restarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.storage import window
from bot.storage.database import Database
from bot.tracker_store import ClinicTrackerStore
from tests.conftest import ROOT

DOMAIN = Domain.load(str(ROOT / "domain.yml"))
TURNS = 30


def long_conversation(sender: str, turns: int = TURNS) -> DialogueStateTracker:
    """`turns` questions and answers, with slots set along the way."""
    tracker = DialogueStateTracker.from_events(sender, [], DOMAIN.slots)
    start = [ActionExecuted("action_session_start"), SlotSet("practice_name", "Clinic")]
    start.append(ActionExecuted("action_listen"))
    for event in start:
        tracker.update(event)
    for turn in range(turns):
        tracker.update(UserUttered(f"question {turn}", {"name": "ask_sciatica", "confidence": 0.9}))
        tracker.update(ActionExecuted("action_answer_topic"))
        tracker.update(BotUttered(f"answer {turn}"))
        if turn == 3:
            tracker.update(SlotSet("body_part", "knee"))
        if turn == 7:
            tracker.update(SlotSet("body_part", "back"))
        tracker.update(ActionExecuted("action_listen"))
    return tracker


def stored_events(url: str, sender: str) -> List[dict[str, Any]]:
    """The `events` rows of one conversation, in order, as dicts."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT data FROM events WHERE sender_id = :s ORDER BY id"), {"s": sender}
            )
            return [json.loads(row[0]) for row in rows]
    finally:
        engine.dispose()


def texts(events: List[Any]) -> List[str]:
    return [e.text for e in events if isinstance(e, UserUttered)]


@pytest.fixture()
def database_url(database: Database) -> str:
    """The migrated test database (SQLite, then PostgreSQL), as the tracker store's URL."""
    if database.schema:
        return f"{database.url}?options=-csearch_path%3D{database.schema}"
    return database.url


@pytest.fixture()
async def store(database_url: str, tmp_path: Path) -> Any:
    store = ClinicTrackerStore(domain=DOMAIN, url=database_url, spool_dir=str(tmp_path / "spool"))
    yield store
    await store.close()


async def test_a_long_conversation_loads_its_recent_turns_with_every_slot_kept(store: ClinicTrackerStore) -> None:
    full = long_conversation("web:long")
    await store.save(full)

    loaded = await store.retrieve("web:long")

    assert loaded is not None
    assert texts(loaded.events) == [f"question {n}" for n in range(TURNS - window.TAIL_TURNS, TURNS)]
    assert len(loaded.events) < len(full.events) / 2
    assert loaded.current_slot_values() == full.current_slot_values()
    assert loaded.get_slot("body_part") == "back"
    assert loaded.latest_message.text == "question 29"
    assert loaded.latest_action_name == "action_listen"
    whole = await store.retrieve_full_tracker("web:long")
    assert texts(whole.events) == [f"question {n}" for n in range(TURNS)]


async def test_the_turn_after_a_window_is_stored_once_after_the_whole_conversation(
    store: ClinicTrackerStore, database_url: str
) -> None:
    full = long_conversation("web:next")
    await store.save(full)
    loaded = await store.retrieve("web:next")
    for event in [UserUttered("and my knee?"), ActionExecuted("action_answer_topic"), BotUttered("knee answer"),
                  SlotSet("body_part", "knee"), ActionExecuted("action_listen")]:
        loaded.update(event)
        full.update(event)

    await store.save(loaded)

    rows = stored_events(database_url, "web:next")
    assert rows == [event.as_dict() for event in full.events], "every event once, in order, no prefix stored"
    again = await store.retrieve("web:next")
    assert again.get_slot("body_part") == "knee"
    assert texts(again.events)[-1] == "and my knee?"


async def test_a_short_conversation_loads_whole(store: ClinicTrackerStore) -> None:
    full = long_conversation("web:short", turns=window.WINDOW_FROM_TURNS)
    await store.save(full)

    loaded = await store.retrieve("web:short")

    assert [e.as_dict() for e in loaded.events] == [e.as_dict() for e in full.events]


async def test_a_form_running_across_the_cut_loads_the_whole_session(store: ClinicTrackerStore) -> None:
    full = long_conversation("web:form", turns=10)
    full.update(ActiveLoop("booking_form"))
    for turn in range(25):
        full.update(UserUttered(f"form answer {turn}"))
        full.update(ActionExecuted("booking_form"))
        full.update(ActionExecuted("action_listen"))
    await store.save(full)

    loaded = await store.retrieve("web:form")

    assert loaded.active_loop_name == "booking_form"
    assert len(loaded.events) == len(full.events)


async def test_a_restart_before_the_cut_loads_the_whole_session(store: ClinicTrackerStore) -> None:
    full = long_conversation("web:restart", turns=5)
    full.update(Restarted())
    full.update(ActionExecuted("action_listen"))
    rest = long_conversation("web:restart", turns=25)
    for event in list(rest.events)[1:]:
        full.update(event)
    await store.save(full)

    loaded = await store.retrieve("web:restart")

    assert len(loaded.events) == len(full.events)
    assert loaded.current_slot_values() == full.current_slot_values()


async def test_a_window_saved_after_another_servers_turn_stores_only_what_is_missing(
    database_url: str, tmp_path: Path
) -> None:
    server_a = ClinicTrackerStore(domain=DOMAIN, url=database_url, spool_dir=str(tmp_path / "a"))
    server_b = ClinicTrackerStore(domain=DOMAIN, url=database_url, spool_dir=str(tmp_path / "b"))
    try:
        await server_a.save(long_conversation("web:two"))
        on_a = await server_a.retrieve("web:two")
        on_b = await server_b.retrieve("web:two")
        on_b.update(UserUttered("from b"))
        on_b.update(ActionExecuted("action_listen"))
        await server_b.save(on_b)
        on_a.update(UserUttered("from a"))
        on_a.update(ActionExecuted("action_listen"))

        await server_a.save(on_a)

        rows = stored_events(database_url, "web:two")
        assert [r["text"] for r in rows if r["event"] == "user"][-2:] == ["from b", "from a"]
        assert not any(window.MARK in (r.get("metadata") or {}) for r in rows), "no prefix event stored"
        assert len(rows) == len(long_conversation("web:two").events) + 4
    finally:
        await server_a.close()
        await server_b.close()
