"""Conversation summaries: what the staff console lists, folded from the stored events.

`fold` is checked on hand-built event lists (one per flag); the tracker store is
checked on SQLite and PostgreSQL: after a save the summary row agrees with the
`events` table, a later save only adds the new events, a broken summary never fails a
save, and the backfill command rebuilds the same rows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.storage.database import Database
from bot.storage.models import UTC, ConversationSummary
from bot.storage.summaries import Summary, backfill, channel_of, empty, fold, main
from bot.tracker_store import ClinicTrackerStore
from tests.storage.outage import eventually

CRISIS = frozenset({"suicidal_thoughts", "self_harm"})
T0 = 1_760_000_000.0


def user(text: str, intent: str, *, at: float = T0, entities: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "event": "user",
        "timestamp": at,
        "text": text,
        "parse_data": {"intent": {"name": intent, "confidence": 0.9}, "entities": entities or []},
    }


def action(name: str, at: float = T0) -> dict[str, Any]:
    return {"event": "action", "name": name, "timestamp": at}


def slot(name: str, value: Any, at: float = T0) -> dict[str, Any]:
    return {"event": "slot", "name": name, "value": value, "timestamp": at}


def bot(text: str, clinic: dict[str, Any] | None = None, at: float = T0) -> dict[str, Any]:
    return {"event": "bot", "text": text, "timestamp": at, "metadata": {"clinic": clinic} if clinic else {}}


def folded(*events: dict[str, Any], who: str = "web:abc12345") -> Summary:
    return fold(empty(who), events, CRISIS)


FLAGS = ("red_flag", "crisis", "booking", "handoff", "not_understood", "thumbs_down", "staff_replied", "taken_over")


def raised(summary: Summary) -> set[str]:
    return {name for name in FLAGS if getattr(summary, name)}


def test_a_plain_question_counts_a_turn_and_a_topic_and_no_flag() -> None:
    summary = folded(
        action("action_session_start", T0),
        user("what is sciatica", "ask_sciatica", at=T0 + 1),
        action("action_answer_topic", T0 + 2),
        bot("Sciatica is...", at=T0 + 3),
        user("and is surgery needed", "ask_surgery", at=T0 + 10),
        user("what is sciatica again", "ask_sciatica", at=T0 + 20),
        user("what can you do", "ask_capabilities", at=T0 + 30),
    )
    assert summary.turns == 4
    assert summary.topics == "sciatica,surgery"
    assert summary.events_seen == 7
    assert summary.started_at is not None and summary.started_at.timestamp() == T0
    assert summary.last_user_message_at is not None and summary.last_user_message_at.timestamp() == T0 + 30
    assert summary.search_text == "what is sciatica\nand is surgery needed\nwhat is sciatica again\nwhat can you do"
    assert raised(summary) == set()


@pytest.mark.parametrize(
    ("events", "flag"),
    [
        (
            [user("numb saddle", "report_red_flag"), action("action_red_flag"),
             slot("red_flags_detected", ["saddle_numbness"])],
            "red_flag",
        ),
        ([user("x", "report_red_flag", entities=[{"entity": "red_flag", "value": "leg_weakness"}])], "red_flag"),
        ([action("action_red_flag"), slot("red_flags_detected", ["suicidal_thoughts"])], "crisis"),
        ([user("x", "report_red_flag", entities=[{"entity": "red_flag", "value": "self_harm"}])], "crisis"),
        ([action("action_submit_booking"), slot("booking_reference", "BK-7Q4M2")], "booking"),
        ([user("a person please", "request_human"), action("action_request_human")], "handoff"),
        ([user("blorp", "nlu_fallback"), action("action_clarify")], "not_understood"),
        ([action("action_default_fallback")], "not_understood"),
        ([action("action_clarify")], "not_understood"),
        ([action("action_save_feedback")], "thumbs_down"),
        ([bot("Hello, Anna here", {"kind": "staff", "name": "Anna"})], "staff_replied"),
        ([slot("human_takeover", True)], "taken_over"),
    ],
)
def test_each_flag_is_raised_by_its_events_only(events: list[dict[str, Any]], flag: str) -> None:
    assert raised(folded(*events)) == {flag}


def test_flags_that_do_not_count() -> None:
    summary = folded(
        action("action_red_flag"),  # "when should I worry?" without a flag: the warning signs
        slot("red_flags_detected", []),
        slot("booking_reference", None),  # form reset, nothing stored
        bot("an alert", {"kind": "emergency"}),
        bot("Anna joined", {"kind": "staff_joined", "name": "Anna"}),
        action("action_handle_yes_no"),  # a thumbs up
    )
    assert raised(summary) == set()


def test_takeover_is_the_current_state_and_other_flags_stay() -> None:
    taken = folded(slot("human_takeover", True), action("action_request_human"))
    released = fold(taken, [slot("human_takeover", False)], CRISIS)
    assert raised(taken) == {"taken_over", "handoff"}
    assert raised(released) == {"handoff"}
    assert released.events_seen == 3


def test_staff_actions_triggered_through_rasa_are_not_patient_turns() -> None:
    staff = {**user("EXTERNAL: staff_reply", "staff_reply", at=T0 + 5), "metadata": {"is_external": True}}
    summary = folded(user("what is sciatica", "ask_sciatica", at=T0), staff,
                     bot("Hello, I'm Rita", {"kind": "staff", "name": "Rita"}, at=T0 + 6))
    assert summary.turns == 1
    assert "EXTERNAL" not in summary.search_text
    assert summary.last_user_message_at == datetime.fromtimestamp(T0, UTC)
    assert raised(summary) == {"staff_replied"}


def test_a_red_flag_and_a_crisis_in_one_message_raise_both() -> None:
    summary = folded(slot("red_flags_detected", ["saddle_numbness", "suicidal_thoughts"]))
    assert raised(summary) == {"red_flag", "crisis"}


def test_search_text_is_capped() -> None:
    summary = folded(*[user("knee " * 1000, "describe_symptoms", at=T0 + i) for i in range(10)])
    assert summary.turns == 10
    assert 19_900 < len(summary.search_text) <= 20_000


@pytest.mark.parametrize(
    ("sender", "channel"),
    [("web:abc12345", "web"), ("rest:t1", "rest"), ("telegram:42", "telegram"), ("whatsapp:6591234567", "whatsapp"),
     ("twilio:whatsapp:+6591234567", "twilio"), ("default", "other")],
)
def test_channel_is_the_sender_id_prefix(sender: str, channel: str) -> None:
    assert channel_of(sender) == channel


# --- through the tracker store, on both databases ------------------------------------------


def tracker(sender_id: str, *events: Any) -> DialogueStateTracker:
    return DialogueStateTracker.from_events(sender_id, list(events), Domain.empty().slots)


def summary_row(database: Database, sender_id: str) -> ConversationSummary | None:
    with database.session_scope() as session:
        row = session.get(ConversationSummary, sender_id)
        if row is not None:
            session.expunge(row)
        return row


def event_count(database: Database, sender_id: str) -> int:
    with database.session_scope() as session:
        return int(
            session.execute(sa.text("SELECT count(*) FROM events WHERE sender_id = :s"), {"s": sender_id}).scalar_one()
        )


def store_url(database: Database) -> str:
    if database.schema:
        return f"{database.url}?options=-csearch_path%3D{database.schema}"
    return database.url


@pytest.fixture()
def store(database: Database, monkeypatch: pytest.MonkeyPatch) -> ClinicTrackerStore:
    from bot.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", store_url(database))
    get_settings.cache_clear()
    return ClinicTrackerStore(domain=Domain.empty())


def seen_all(database: Database, sender: str) -> Callable[[], bool]:
    def check() -> bool:
        row = summary_row(database, sender)
        return row is not None and row.events_seen == event_count(database, sender) > 0

    return check


async def test_saved_conversation_has_a_summary_that_agrees_with_its_events(
    store: ClinicTrackerStore, database: Database
) -> None:
    sender = "web:summary01"
    first = tracker(
        sender,
        ActionExecuted("action_listen"),
        UserUttered("what is sciatica", {"name": "ask_sciatica", "confidence": 0.9}),
        ActionExecuted("action_answer_topic"),
        BotUttered("Sciatica is..."),
    )
    await store.save(first)
    await eventually(seen_all(database, sender), timeout=60)
    row = summary_row(database, sender)
    assert row is not None
    assert (row.channel, row.turns, row.topics, row.red_flag, row.booking) == ("web", 1, "sciatica", False, False)

    later = tracker(
        sender,
        *first.events,
        UserUttered("I can't control my bladder", {"name": "report_red_flag", "confidence": 0.9}),
        ActionExecuted("action_red_flag"),
        SlotSet("red_flags_detected", ["bladder_bowel"]),
        BotUttered("Please call 995", metadata={"clinic": {"kind": "emergency"}}),
        BotUttered("Hi, Anna here", metadata={"clinic": {"kind": "staff", "name": "Anna"}}),
    )
    await store.save(later)
    await eventually(seen_all(database, sender), timeout=60)
    row = summary_row(database, sender)
    assert row is not None
    assert (row.turns, row.red_flag, row.crisis, row.staff_replied) == (2, True, False, True)
    assert row.events_seen == event_count(database, sender)
    assert row.search_text == "what is sciatica\nI can't control my bladder"

    with database.session_scope() as session:
        session.execute(sa.delete(ConversationSummary))
    assert backfill(store.engine, frozenset()) == 1
    rebuilt = summary_row(database, sender)
    assert rebuilt is not None
    assert (rebuilt.turns, rebuilt.topics, rebuilt.red_flag, rebuilt.staff_replied, rebuilt.events_seen) == (
        row.turns, row.topics, row.red_flag, row.staff_replied, row.events_seen,
    )
    await store.close()


async def test_a_broken_summary_table_never_fails_a_save(
    store: ClinicTrackerStore, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    sender = "web:summary02"
    conversation = tracker(sender, ActionExecuted("action_listen"), UserUttered("hello"))
    await store.save(conversation)
    await eventually(seen_all(database, sender), timeout=60)
    with database.session_scope() as session:
        session.execute(sa.text("ALTER TABLE conversation_summaries RENAME TO summaries_away"))
    caplog.set_level(logging.WARNING, logger="bot.storage.summaries")

    conversation.update(UserUttered("my secret knee"))  # the next turn of the same conversation
    await store.save(conversation)
    await asyncio.to_thread(store.summaries.wait)

    assert event_count(database, sender) == 3
    assert "conversation summary not updated" in caplog.text
    assert "secret" not in caplog.text and sender not in caplog.text
    await store.close()


def test_backfill_command_rebuilds_from_the_events_table(
    database: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.settings import get_settings

    store = ClinicTrackerStore(domain=Domain.empty(), url=store_url(database))  # creates `events`
    with database.session_scope() as session:
        for index, (kind, data) in enumerate(
            [("user", user("how to prevent knee pain", "ask_prevention")), ("action", action("action_request_human"))]
        ):
            session.execute(
                sa.text("INSERT INTO events (sender_id, type_name, timestamp, data) VALUES (:s, :t, :ts, :d)"),
                {"s": "telegram:77", "t": kind, "ts": T0 + index, "d": __import__("json").dumps(data)},
            )
    monkeypatch.setenv("DATABASE_URL", store_url(database))
    get_settings.cache_clear()

    assert main(["backfill"]) == 0

    assert "rebuilt 1 conversation summaries" in capsys.readouterr().out
    row = summary_row(database, "telegram:77")
    assert row is not None
    assert (row.channel, row.turns, row.topics, row.handoff, row.events_seen) == ("telegram", 1, "prevention", True, 2)
    store.engine.dispose()
