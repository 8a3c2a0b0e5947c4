"""End to end over real servers on loopback: REST channel -> Rasa -> action server -> database.

These talk HTTP to a real `rasa run` with the trained model and a real `rasa run actions`,
exactly as a patient's messages travel, and check what the patient reads and what the
clinic's database holds afterwards.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict, List

import sqlalchemy as sa

from tests.conftest import RasaStack


def texts(replies: List[Dict[str, Any]]) -> str:
    return "\n".join(r.get("text", "") for r in replies)


def buttons(replies: List[Dict[str, Any]]) -> List[str]:
    return [b["payload"] for r in replies for b in r.get("buttons", [])]


def sender(prefix: str = "rest") -> str:
    return f"{prefix}:{uuid.uuid4().hex[:10]}"


def count(url: str, table: str, where: str = "", **params: Any) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table} {where}"), params).scalar() or 0)
    finally:
        engine.dispose()


def test_greeting_says_what_the_assistant_is(rasa_server: RasaStack) -> None:
    replies = rasa_server.say(sender(), "hello")
    text = texts(replies)
    assert "automated assistant" in text and "not a doctor" in text
    assert "Dr Yong Ren" not in text or "The Orthopaedic and Pain Practice" in text
    assert "/book_appointment" in buttons(replies)


def test_a_topic_question_gets_the_article_answer(rasa_server: RasaStack) -> None:
    replies = rasa_server.say(sender(), "what is a hyaluronic acid injection?")
    assert "lubricate the knee joint" in texts(replies)


def test_follow_up_about_the_back_after_a_knee_answer(rasa_server: RasaStack) -> None:
    who = sender()
    rasa_server.say(who, "what exercises help my knee pain")
    replies = rasa_server.say(who, "what about my back?")
    assert "stabilise the spine" in texts(replies)


def test_red_flag_beats_everything_even_inside_the_booking_form(rasa_server: RasaStack) -> None:
    who = sender()
    rasa_server.say(who, "i want to book an appointment")
    asked = rasa_server.say(who, "/affirm")
    assert "full name" in texts(asked)
    replies = rasa_server.say(who, "wait, I suddenly can't control my bladder")
    text = texts(replies)
    assert "This could be an emergency." in text and "A&E" in text
    tracker = rasa_server.tracker(who)
    assert tracker["active_loop"] == {} or tracker["active_loop"].get("name") is None
    assert tracker["slots"]["red_flag"] is True
    assert count(rasa_server.database_url, "red_flag_alerts", "WHERE conversation_id = :c", c=who) == 1
    # the next message is answered normally, the form does not come back on its own
    assert "sciatic nerve" in texts(rasa_server.say(who, "what is sciatica"))


def test_negated_symptoms_are_not_treated_as_an_emergency(rasa_server: RasaStack) -> None:
    replies = rasa_server.say(sender(), "no numbness and no bladder problems, just a sore lower back after gardening")
    assert "A&E" not in texts(replies)


def test_booking_through_rest_stores_one_request_and_every_message(rasa_server: RasaStack) -> None:
    who = sender()
    script = [
        ("can I book a consultation", "Is that OK?"),
        ("/affirm", "full name"),
        ("Tan Wei Ming", "mobile number"),
        ("9123 4567", "email"),
        ("skip", "Which area"),
        ("knee", "When would suit you"),
        ("next tuesday after 5pm", "In a sentence or two"),
        ("my left knee hurts going down stairs since March", "Please check your details"),
    ]
    for message, expected in script:
        replies = rasa_server.say(who, message)
        assert expected in texts(replies), (message, texts(replies))
    summary = texts(replies)
    assert "Tan Wei Ming" in summary and "+65 9123 4567" in summary and "Noted" not in summary
    done = rasa_server.say(who, "/affirm")
    assert "Your reference is BK-" in texts(done)
    # pressing confirm again does not create a second request
    rasa_server.say(who, "/affirm")
    url = rasa_server.database_url
    assert count(url, "booking_requests", "WHERE conversation_id = :c", c=who) == 1
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT full_name, phone_e164, body_part, preferred_times, description FROM booking_requests "
                    "WHERE conversation_id = :c"),
            {"c": who},
        ).one()
        assert tuple(row) == ("Tan Wei Ming", "+6591234567", "knee", "next tuesday after 5pm",
                              "my left knee hurts going down stairs since March")
        events = conn.execute(
            sa.text("SELECT type_name, data FROM events WHERE sender_id = :c ORDER BY id"), {"c": who}
        ).all()
    engine.dispose()
    users = [e for e in events if e[0] == "user"]
    bots = [e for e in events if e[0] == "bot"]
    assert len(users) == len(script) + 2
    assert any("Your reference is BK-" in e[1] for e in bots)
    assert any("Tan Wei Ming" in e[1] for e in users)


def test_handoff_request_is_stored_for_staff(rasa_server: RasaStack) -> None:
    who = sender()
    replies = rasa_server.say(who, "I want to speak to a real person")
    assert texts(replies)
    assert "staff" in texts(replies).lower() or "call you back" in texts(replies)
