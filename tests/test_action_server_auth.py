"""The action server answers only Rasa: a shared secret on every request.

A forged `POST /webhook` with `next_action: action_submit_booking` used to store a booking.
Starts the real `rasa run actions` from the project root (so rasa-sdk loads our plugin,
`rasa_sdk_plugins`) on a free loopback port with its own database.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from cryptography.fernet import Fernet

from bot.action_auth import HEADER
from tests.conftest import BIN, ROOT, free_port, wait_http


def _start(tmp_path: Path, **env: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    from bot.storage.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    upgrade(url)
    port = free_port()
    log = tmp_path / "actions.log"
    full_env = dict(os.environ, DATABASE_URL=url, BOT_DATA_DIR=str(tmp_path / "var"), SANIC_HOST="127.0.0.1", **env)
    proc = subprocess.Popen(
        [str(BIN / "rasa"), "run", "actions", "--actions", "actions", "-p", str(port)],
        cwd=ROOT, env=full_env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    return proc, f"http://127.0.0.1:{port}", log


@pytest.fixture
def action_server(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    secret = uuid.uuid4().hex
    proc, url, _ = _start(tmp_path, ACTION_SERVER_SECRET=secret)
    try:
        wait_http(f"{url}/health", proc=proc)
        yield url, secret, f"sqlite:///{tmp_path / 'clinic.db'}"
    finally:
        proc.terminate()
        proc.wait(20)


def forged_booking() -> dict[str, Any]:
    slots = {"full_name": "Mallory", "phone": "+6591234567", "consent": True, "body_part": "knee"}
    return {
        "next_action": "action_submit_booking",
        "sender_id": "rest:forged",
        "version": "3.6.21",
        "domain": {"slots": {}, "responses": {}},
        "tracker": {"sender_id": "rest:forged", "slots": slots, "latest_message": {}, "events": [],
                    "active_loop": {}, "latest_action_name": "action_listen"},
    }


def bookings(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM booking_requests")).scalar() or 0)
    finally:
        engine.dispose()


def test_requests_without_the_secret_are_refused(action_server: tuple[str, str, str]) -> None:
    url, secret, database = action_server
    for headers in ({}, {HEADER: "wrong"}, {HEADER: secret[:-1]}, {"Authorization": f"Bearer {secret}"}):
        forged = requests.post(f"{url}/webhook", json=forged_booking(), headers=headers, timeout=10)
        assert forged.status_code == 401
        assert forged.json()["error"] == "unauthorized"
        assert requests.get(f"{url}/actions", headers=headers, timeout=10).status_code == 401
    assert bookings(database) == 0
    assert requests.get(f"{url}/health", timeout=10).status_code == 200
    listed = requests.get(f"{url}/actions", headers={HEADER: secret}, timeout=10)
    assert listed.status_code == 200
    assert {"name": "action_submit_booking"} in listed.json()


def test_production_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    proc, url, log = _start(
        tmp_path, BOT_ENV="production", RASA_AUTH_TOKEN="r" * 32, ACTION_SERVER_SECRET="",
        SPOOL_KEY=Fernet.generate_key().decode(),
    )
    try:
        code = proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code != 0
    assert "ACTION_SERVER_SECRET" in log.read_text(errors="replace")
