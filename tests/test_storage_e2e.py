"""The real Rasa server: a refused sender id, a stalled database, what reaches its log.

Nothing is patched: the REST channel receives what a client sent, and the database is
reached through a loopback link that the test stalls (accepts, never answers).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Callable, Dict, List

import requests
import sqlalchemy as sa

from tests.conftest import RasaStack
from tests.standins.database_link import DatabaseLink


def stored_user_texts(url: str, sender_id: str) -> List[str]:
    """What the patient said, as stored in the conversation table."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT data FROM events WHERE sender_id = :s AND type_name = 'user' ORDER BY id"),
                {"s": sender_id},
            )
            return [json.loads(row[0])["text"] for row in rows]
    finally:
        engine.dispose()


def test_nul_sender_id_does_not_stop_the_server(
    rasa_stack_factory: Callable[..., RasaStack], postgres_url: str
) -> None:
    stack = rasa_stack_factory(database_url=postgres_url)
    response = requests.post(
        f"{stack.rasa_url}/webhooks/rest/webhook", json={"sender": "\u0000", "message": "hi"}, timeout=60
    )
    # The REST channel refuses it at the door (bot/channels/sender.py): 400 with a JSON error.
    assert response.status_code == 400 and response.json()["error"] == "invalid_sender"
    assert stack.procs["rasa"].poll() is None, "the server is still running"
    who = f"rest:{uuid.uuid4().hex[:8]}"
    assert stack.say(who, "what is sciatica")
    assert stored_user_texts(postgres_url, who) == ["what is sciatica"]
    assert "CONVERSATION STORE DOWN" not in stack.log("rasa")


def test_stalled_database_does_not_freeze_the_server(
    rasa_stack_factory: Callable[..., RasaStack], postgres_url: str
) -> None:
    link = DatabaseLink()
    link.open()
    stack = rasa_stack_factory(database_url=link.url(postgres_url))
    who = f"rest:{uuid.uuid4().hex[:8]}"
    try:
        assert stack.say(who, "hello")
        link.stall()
        reply: Dict[str, object] = {}

        def talk() -> None:
            started = time.monotonic()
            reply["texts"] = stack.say(who, "what is sciatica")
            reply["seconds"] = time.monotonic() - started

        talking = threading.Thread(target=talk, daemon=True)
        talking.start()
        started = time.monotonic()
        assert requests.get(f"{stack.rasa_url}/", timeout=30).ok
        assert time.monotonic() - started < 2, "GET / waited on the database"
        talking.join(timeout=40)
        assert not talking.is_alive(), "the message waited on the stalled database"
        assert reply["texts"] and float(reply["seconds"]) < 15  # type: ignore[arg-type]
        assert "sciatic" in str(reply["texts"])
        assert list((stack.data_dir / "spool" / "trackers").rglob("*.json")), "kept on disk"
    finally:
        link.close()


def test_slash_messages_that_do_not_parse_are_not_echoed_in_the_log(rasa_server: RasaStack) -> None:
    who = f"rest:{uuid.uuid4().hex[:8]}"
    for typed in (
        '/greet{"name": "Mary O\'Neill", "phone": 07700900123}',
        "/Mary O'Neill 07700900123",
        "/{Mary O'Neill 07700900123",
    ):
        rasa_server.say(who, typed)
    assert rasa_server.say(who, "hello"), "the server goes on answering"
    log = rasa_server.log("rasa")
    assert "07700900123" not in log and "Mary" not in log
