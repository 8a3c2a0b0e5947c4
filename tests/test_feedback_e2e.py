""""Was this helpful?" over a real `rasa run` and action server, down to the stored row.

A thumbs-down asks what was missing: the patient's words are stored with the rating; "Skip"
stores the rating alone; a new question instead of a comment is answered (not stored as the
comment). A thumbs-up is stored at once.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Dict, List, Optional, Tuple

import sqlalchemy as sa

from tests.conftest import RasaStack

Row = Tuple[str, bool, Optional[str]]


def texts(replies: List[Dict[str, Any]]) -> str:
    return "\n".join(r.get("text", "") for r in replies)


def sender() -> str:
    return f"rest:{uuid.uuid4().hex[:10]}"


def feedback_rows(stack: RasaStack, who: str, expected: int, timeout: float = 20.0) -> List[Row]:
    """The conversation's feedback rows, once `expected` of them have been written."""
    engine = sa.create_engine(stack.database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as connection:
                rows = [
                    (r[0], bool(r[1]), r[2])
                    for r in connection.execute(
                        sa.text("SELECT topic, helpful, comment FROM answer_feedback "
                                "WHERE conversation_id = :c ORDER BY id"),
                        {"c": who},
                    )
                ]
            if len(rows) >= expected or time.monotonic() > deadline:
                return rows
            time.sleep(0.2)
    finally:
        engine.dispose()


def ask_prp(stack: RasaStack, who: str) -> None:
    said = texts(stack.say(who, "what is prp"))
    assert "platelet" in said.lower() and "Was this helpful?" in said


def test_thumbs_down_asks_what_was_missing_and_stores_the_answer(rasa_server: RasaStack) -> None:
    who = sender()
    ask_prp(rasa_server, who)
    assert "what were you looking for?" in texts(rasa_server.say(who, "/deny"))
    said = texts(rasa_server.say(who, "it did not say how long the effect lasts"))
    assert "Thank you, that helps us improve" in said
    assert feedback_rows(rasa_server, who, 1) == [("prp", False, "it did not say how long the effect lasts")]


def test_skip_stores_the_rating_without_a_comment(rasa_server: RasaStack) -> None:
    who = sender()
    ask_prp(rasa_server, who)
    rasa_server.say(who, "/deny")
    assert "Thank you" in texts(rasa_server.say(who, "skip"))
    assert feedback_rows(rasa_server, who, 1) == [("prp", False, None)]


def test_a_new_question_instead_of_a_comment_is_answered_not_stored(rasa_server: RasaStack) -> None:
    who = sender()
    ask_prp(rasa_server, who)
    rasa_server.say(who, "/deny")
    said = texts(rasa_server.say(who, "what does physiotherapy involve?"))
    assert "physiotherap" in said.lower() and "Thank you, that helps" not in said
    assert feedback_rows(rasa_server, who, 1) == [("prp", False, None)]


def test_thumbs_up_is_stored_at_once(rasa_server: RasaStack) -> None:
    who = sender()
    ask_prp(rasa_server, who)
    assert "what were you looking for?" not in texts(rasa_server.say(who, "/affirm"))
    assert feedback_rows(rasa_server, who, 1) == [("prp", True, None)]
