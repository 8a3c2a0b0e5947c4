"""Helpers for the staff console's tests: a real server, signed-in sessions, a handoff stand-in.

A migrated database with sample clinic data, the app served by a real uvicorn server in a
thread, and `requests` sessions that signed in through the login form like a browser does.

The reply box's `bot.handoff` functions need a running Rasa; these tests pass a recording
stand-in (`RecordingHandoff`) that returns the contract's `Delivery` values.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
import uvicorn
from console_seed import PASSWORD

from bot.settings import Settings
from bot.storage.database import Database
from bot.storage.models import StaffUser

CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass(frozen=True)
class Delivery:
    """The contract's result of a takeover call (bot.handoff.Delivery)."""

    delivered: bool
    reason: str | None = None


@dataclass
class RecordingHandoff:
    """Stands in for bot.handoff: remembers calls, answers with `next_delivery`."""

    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    next_delivery: Delivery = field(default_factory=lambda: Delivery(True))

    def take(self, conversation_id: str, by: str) -> Delivery:
        self.calls.append(("take", (conversation_id, by)))
        return self.next_delivery

    def release(self, conversation_id: str, by: str) -> Delivery:
        self.calls.append(("release", (conversation_id, by)))
        return self.next_delivery

    def send_staff_reply(self, conversation_id: str, text: str, staff_name: str) -> Delivery:
        self.calls.append(("send_staff_reply", (conversation_id, text, staff_name)))
        return self.next_delivery

    def reachability(self, conversation_id: str) -> Delivery:
        return self.next_delivery


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ConsoleServer:
    """A console app on a real port, its database and sample data."""

    url: str
    db: Database
    users: dict[str, StaffUser]
    ids: dict[str, Any]
    handoff: RecordingHandoff

    def login(self, role: str, password: str = PASSWORD) -> requests.Session:
        """A session signed in as the sample user of this role."""
        session = requests.Session()
        response = self.try_login(session, self.users[role].username, password)
        assert response.status_code == 303, response.text[:300]
        return session

    def try_login(self, session: requests.Session, username: str, password: str,
                  address: str | None = None) -> requests.Response:
        """Post the login form as a browser would (form token from GET /login first)."""
        page = session.get(self.url + "/login")
        token = CSRF_FIELD.search(page.text).group(1)  # type: ignore[union-attr]
        headers = {"X-Forwarded-For": address} if address else {}
        return session.post(self.url + "/login", data={"csrf": token, "username": username,
                                                       "password": password, "next": "/"},
                            allow_redirects=False, headers=headers)


def csrf_of(session: requests.Session, url: str) -> str:
    """The CSRF token in the forms of a page."""
    match = CSRF_FIELD.search(session.get(url).text)
    assert match, f"no form on {url}"
    return match.group(1)


def serve(app: Any) -> tuple[str, Callable[[], None]]:
    """Run an ASGI app with uvicorn in a thread; returns its URL and a stop function."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("console did not start")
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return f"http://127.0.0.1:{port}", stop


def console_settings(**extra: str) -> Settings:
    """Test settings (the loopback address counts as a trusted proxy for lockout tests)."""
    env = {"BOT_ENV": "test", "CONSOLE_TRUSTED_PROXIES": "127.0.0.1", **extra}
    return Settings.from_env(env)


