"""Over a real `rasa run`: the conversation's summary row agrees with its stored events."""

from __future__ import annotations

import json
import time
import uuid

import sqlalchemy as sa

from tests.conftest import RasaStack


def test_conversation_leaves_a_summary_consistent_with_its_events(rasa_server: RasaStack) -> None:
    who = f"rest:sum{uuid.uuid4().hex[:8]}"
    rasa_server.say(who, "what is sciatica")
    rasa_server.say(who, "I suddenly can't control my bladder and my groin is numb")
    rasa_server.say(who, "can I talk to a person please")

    engine = sa.create_engine(rasa_server.database_url)
    try:
        deadline = time.monotonic() + 60
        while True:
            with engine.connect() as connection:
                events = [
                    json.loads(data)
                    for (data,) in connection.execute(
                        sa.text("SELECT data FROM events WHERE sender_id = :s ORDER BY id"), {"s": who}
                    )
                ]
                row = connection.execute(
                    sa.text("SELECT * FROM conversation_summaries WHERE conversation_id = :s"), {"s": who}
                ).mappings().first()
            if row is not None and row["events_seen"] == len(events):
                break
            assert time.monotonic() < deadline, "summary never caught up with the events"
            time.sleep(0.2)
    finally:
        engine.dispose()

    users = [e for e in events if e.get("event") == "user"]
    intents = [e["parse_data"]["intent"]["name"] for e in users]
    actions = {e.get("name") for e in events if e.get("event") == "action"}
    assert row["turns"] == len(users) == 3
    assert row["channel"] == "rest"
    assert "sciatica" in row["topics"].split(",")
    assert intents[0] == "ask_sciatica"
    assert bool(row["red_flag"]) is ("action_red_flag" in actions) is True
    assert bool(row["handoff"]) is ("action_request_human" in actions)
    assert not row["crisis"] and not row["booking"] and not row["staff_replied"]
    assert row["search_text"].splitlines()[0] == "what is sciatica"
