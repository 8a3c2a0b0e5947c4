"""Faults for real: the action server stopped, the database refusing connections, a bad URL.

Nothing is patched: processes are stopped, and the database is reached through a small
TCP relay on loopback that the test closes (connections refused) and reopens.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path
from typing import Callable

import pytest
import sqlalchemy as sa

from tests.conftest import BIN, ROOT, RasaStack, free_port, wait_http
from tests.standins.database_link import DatabaseLink


def test_action_server_down_still_gets_a_reply_with_the_phone(
    rasa_stack_factory: Callable[..., RasaStack],
) -> None:
    stack = rasa_stack_factory()
    stack.stop("actions")
    replies = stack.say("rest:no-actions", "what is sciatica?")
    text = "\n".join(r.get("text", "") for r in replies)
    assert "technical problem" in text
    assert "not configured yet" in text or "+" in text  # the practice phone from the profile


def test_wrong_database_url_refuses_to_start(tmp_path: Path, model_path: Path) -> None:
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  type: bot.tracker_store.ClinicTrackerStore\n", encoding="utf-8")
    import os

    env = dict(os.environ, DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/test",
               BOT_DATA_DIR=str(tmp_path / "var"))
    result = subprocess.run(
        [str(BIN / "rasa"), "run", "-i", "127.0.0.1", "-p", str(free_port()), "--model", str(model_path),
         "--endpoints", str(endpoints)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    assert "Refusing to start" in result.stdout + result.stderr


def test_database_outage_is_alerted_spooled_and_stored_when_back(
    rasa_stack_factory: Callable[..., RasaStack], postgres_url: str
) -> None:
    relay = DatabaseLink()
    relay.open()
    url = relay.url(postgres_url)
    stack = rasa_stack_factory(database_url=url)
    who = f"rest:{uuid.uuid4().hex[:8]}"
    try:
        assert stack.say(who, "what is sciatica")
        relay.close()
        during = stack.say(who, "and what is prp?")
        tracker = stack.tracker(who)  # the conversation keeps its context during the outage
        assert [e["text"] for e in tracker["events"] if e["event"] == "user"][-2:] == [
            "what is sciatica", "and what is prp?"]
        assert "platelets" in "\n".join(r.get("text", "") for r in during)
        time.sleep(1)
        assert "CONVERSATION STORE DOWN" in stack.log("rasa")
        spooled = list((stack.data_dir / "spool" / "trackers").rglob("*.json"))
        assert spooled, "the conversation must be kept on disk during the outage"
        relay.open()
        after = stack.say(who, "thank you")
        assert after
    finally:
        relay.close()
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        texts = [row[0] for row in conn.execute(
            sa.text("SELECT data FROM events WHERE sender_id = :s AND type_name = 'user' ORDER BY id"), {"s": who}
        )]
    engine.dispose()
    assert len(texts) == 3, texts
    assert any("prp" in t for t in texts), "the message sent during the outage was stored once it was back"
    assert "conversation store is back" in stack.log("rasa")


@pytest.mark.parametrize("clock,expected", [
    # Monday morning, open (REST: staff cannot reply in this chat later, so no "reply here")
    ("2026-11-30T10:00:00+08:00", "asked our staff to look at this conversation"),
    ("2026-11-29T22:00:00+08:00", "Would you like us to call you back"),  # Sunday night, closed
])
def test_handoff_in_and_out_of_opening_hours(
    rasa_stack_factory: Callable[..., RasaStack], clock: str, expected: str, tmp_path: Path
) -> None:
    import yaml

    from bot.profile import PROFILE_PATH

    profile = yaml.safe_load(PROFILE_PATH.read_text(encoding="utf-8"))
    profile["opening_hours"]["status"] = "confirmed"  # unconfirmed hours are never used
    confirmed = tmp_path / "confirmed_profile.yml"
    confirmed.write_text(yaml.safe_dump(profile), encoding="utf-8")
    stack = rasa_stack_factory(extra_env={"CLINIC_CLOCK": clock, "PRACTICE_PROFILE": str(confirmed)})
    who = f"rest:{uuid.uuid4().hex[:8]}"
    replies = stack.say(who, "can I talk to a person please")
    assert expected in "\n".join(r.get("text", "") for r in replies)
    if "call you back" in expected:
        offer = replies[-1]
        assert "/request_callback" in [b["payload"] for b in offer.get("buttons", [])]
        assert "Is that OK?" in "\n".join(r.get("text", "") for r in stack.say(who, "/request_callback"))
        stack.say(who, "/affirm")
        stack.say(who, "Sarah Lim")
        done = stack.say(who, "+65 9876 5432")
        assert "call you back" in "\n".join(r.get("text", "") for r in done)
    engine = sa.create_engine(stack.database_url)
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT within_hours, callback_requested, contact_phone FROM handoff_requests "
                    "WHERE conversation_id = :c"), {"c": who},
        ).one()
    engine.dispose()
    if "call you back" in expected:
        assert (bool(row[0]), bool(row[1]), row[2]) == (False, True, "+6598765432")
    else:
        assert (bool(row[0]), bool(row[1]), row[2]) == (True, False, None)


def test_staff_takeover_silences_the_bot_until_released(rasa_server: RasaStack) -> None:
    import requests

    who = f"rest:{uuid.uuid4().hex[:8]}"
    rasa_server.say(who, "hello")
    events_url = f"{rasa_server.rasa_url}/conversations/{who}/tracker/events"
    take = [{"event": "slot", "name": "human_takeover", "value": True}]
    assert requests.post(events_url, json=take, params={"token": rasa_server.token}, timeout=30).ok
    assert rasa_server.say(who, "what is sciatica") == []
    # a red flag is still answered during a takeover
    urgent = rasa_server.say(who, "I can't pee since this morning")
    assert "A&E" in "\n".join(r.get("text", "") for r in urgent)
    release = [{"event": "slot", "name": "human_takeover", "value": False}]
    assert requests.post(events_url, json=release, params={"token": rasa_server.token}, timeout=30).ok
    assert "sciatic nerve" in "\n".join(r.get("text", "") for r in rasa_server.say(who, "what is sciatica"))


def test_http_api_needs_the_token(rasa_server: RasaStack) -> None:
    import requests

    response = requests.get(f"{rasa_server.rasa_url}/conversations/anyone/tracker", timeout=30)
    assert response.status_code == 401
    model_load = requests.put(f"{rasa_server.rasa_url}/model", json={"model_file": "/tmp/x.tar.gz"}, timeout=30)
    assert model_load.status_code == 401


def test_action_server_killed_mid_booking_then_restarted_the_booking_completes_once(
    rasa_stack_factory: Callable[..., RasaStack],
) -> None:
    stack = rasa_stack_factory()
    who = f"rest:{uuid.uuid4().hex[:10]}"

    def said(message: str) -> str:
        return "\n".join(r.get("text", "") for r in stack.say(who, message))

    assert "Is that OK?" in said("can I book a consultation")
    assert "full name" in said("/affirm")
    stack.procs["actions"].kill()  # a crash, not a clean stop
    stack.procs["actions"].wait(timeout=10)
    paused = stack.say(who, "Tan Wei Ming")
    assert "technical problem" in "\n".join(r.get("text", "") for r in paused)
    assert {"title": "Continue my booking", "payload": "/book_appointment"} in paused[-1]["buttons"]
    port = stack.actions_url.rsplit(":", 1)[1]
    log = stack.logs["actions"].open("ab")
    stack.procs["actions"] = subprocess.Popen(
        [str(BIN / "rasa"), "run", "actions", "--actions", "actions", "-p", port],
        cwd=ROOT, env=stack.env, stdout=log, stderr=subprocess.STDOUT,
    )
    wait_http(f"{stack.actions_url}/health", proc=stack.procs["actions"])
    assert "full name" in said("/book_appointment")  # "Continue my booking": consent kept
    replies = [said(m) for m in ("Tan Wei Ming", "9123 4567", "skip", "knee", "next tuesday after 5pm",
                                 "my left knee hurts going down stairs since March")]
    assert "Please check your details" in replies[-1] and "Tan Wei Ming" in replies[-1]
    assert "Your reference is BK-" in said("/affirm")
    engine = sa.create_engine(stack.database_url)
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT full_name, phone_e164 FROM booking_requests WHERE conversation_id = :c"), {"c": who}
        ).all()
    engine.dispose()
    assert [tuple(r) for r in stored] == [("Tan Wei Ming", "+6591234567")]
