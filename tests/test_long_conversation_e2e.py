"""A long conversation through the real Rasa server: context, forms and storage hold at turn 30.

Past `bot.storage.window.WINDOW_FROM_TURNS` patient messages, Rasa is given the recent turns
and the slots instead of the whole conversation. The patient must not notice: a follow-up
question still uses the topic of the one before, a booking started late runs to its
reference, and the whole conversation, every message once, is in the database and in what
Rasa's HTTP API shows staff.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Dict, List

import sqlalchemy as sa

from bot.storage.window import WINDOW_FROM_TURNS
from tests.conftest import RasaStack
from tests.test_scaled_layout import BOOKING, QUESTIONS


def replies_text(replies: List[Dict[str, Any]]) -> str:
    return " ".join(str(r.get("text") or "") for r in replies)


def rows(url: str, sql: str, **params: Any) -> List[Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text(sql), params))
    finally:
        engine.dispose()


def test_thirty_turns_in_context_is_kept_a_late_booking_completes_and_everything_is_stored_once(
    rasa_server: RasaStack,
) -> None:
    sender = f"rest:long-{uuid.uuid4().hex[:8]}"
    said: List[str] = []
    questions = [turn for conversation in QUESTIONS for turn in conversation if turn[0] not in ("hello", "thanks")]
    while len(said) < WINDOW_FROM_TURNS + 5:
        for text, expected in questions:
            replies = rasa_server.say(sender, text)
            said.append(text)
            assert replies, f"no answer to {text!r} at turn {len(said)}"
            if expected:
                assert expected in replies_text(replies), (len(said), text, replies)

    booking_replies: List[Dict[str, Any]] = []
    for text, expected in BOOKING:
        text = text.format(name="Alex Long", phone="9123 4567")
        replies = rasa_server.say(sender, text)
        booking_replies += replies
        said.append(text)
        if expected:
            assert expected in replies_text(replies), (len(said), text, replies)

    url = rasa_server.database_url
    stored = [json.loads(d)["text"] for (d,) in rows(
        url, "SELECT data FROM events WHERE sender_id = :s AND type_name = 'user' ORDER BY id", s=sender)]
    assert stored == said, "every message stored once, in order"
    bookings = rows(url, "SELECT reference, full_name FROM booking_requests WHERE conversation_id = :s", s=sender)
    given = re.findall(r"Your reference is (BK-\w+)", replies_text(booking_replies))
    assert [tuple(b) for b in bookings] == [(given[0], "Alex Long")], "one booking, the reference the patient read"
    marks = rows(url, "SELECT count(*) FROM events WHERE sender_id = :s AND data LIKE '%clinic_window%'", s=sender)
    assert marks[0][0] == 0, "the window's stand-in events are never stored"
    shown = [e["text"] for e in rasa_server.tracker(sender)["events"] if e["event"] == "user"]
    assert shown == said, "Rasa's HTTP API shows staff the whole conversation"
