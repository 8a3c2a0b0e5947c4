"""Many patients at once over REST and socket.io: nothing lost, nothing doubled (`bot.load`).

`make load` runs 50 conversations for two minutes and reports latency; this runs the same
driver, smaller (16 conversations, half in the widget over WebSocket, four of them booking,
for 45 s), against a real stack on PostgreSQL, and checks what a patient and the clinic
would notice: every message answered, every message stored once and in order with as many
bot messages as the patient received, and every finished booking one row with the reference
the patient was shown.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
import sqlalchemy as sa

from bot.load import BOOKING, CREDENTIALS, run_load
from tests.conftest import PG_URL, start_stack

CONVERSATIONS = 16
SECONDS = 45.0


@pytest.fixture(scope="module")
def report(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    """One load run against a stack on a fresh PostgreSQL schema."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    database_url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    stack = start_stack(tmp_path_factory.mktemp("load"), model_path, database_url, credentials=CREDENTIALS)
    try:
        yield run_load(stack.rasa_url, database_url, CONVERSATIONS, SECONDS)
    finally:
        for process in stack.procs:
            stack.stop(process)
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def test_every_message_on_both_channels_is_answered(report: Dict[str, Any]) -> None:
    assert report["errors"] == []
    for channel in ("rest", "socketio"):
        figures = report[channel]
        assert figures["conversations"] == CONVERSATIONS // 2
        # every patient got past the first round of the script in 45 s
        assert figures["messages"] >= CONVERSATIONS // 2 * len(BOOKING), figures
        assert figures["errors"] == 0


def test_every_message_and_reply_is_stored_once_in_order(report: Dict[str, Any]) -> None:
    stored = report["stored"]
    assert stored["problems"] == []
    assert stored["user"] == report["all"]["messages"]
    assert stored["bot"] >= stored["user"]


def test_every_booking_is_stored_once_with_the_reference_shown(report: Dict[str, Any]) -> None:
    assert report["bookings_started"] == 4
    assert report["bookings_finished"] == 4
    assert report["stored"]["bookings"] == 4
