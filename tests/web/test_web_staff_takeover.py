"""A live takeover, end to end: the patient in the widget, a receptionist in the console.

Everything is real: `rasa run` with the trained model and the action server, the demo site
with the widget in one Chromium page, the staff console (its own ASGI app on the same
database, calling the real `bot.handoff`) in another. The receptionist finds the patient's
conversation in the console, takes it over, replies and hands it back; the patient sees who
joined, the reply under the staff member's name, and no bot answer while taken over (checked
by the next message the patient receives being the staff member's second reply).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect

from bot.console.app import create_app
from bot.console.auth import hash_password
from bot.settings import Settings, get_settings
from bot.storage import console as store
from bot.storage.database import Database
from tests.standins._server import free_port

if TYPE_CHECKING:
    from tests.web.conftest import DemoSite

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "takeover"
IN_HOURS = "2026-11-30T10:00:00+08:00"  # a Monday morning: the clinic is open
PASSWORD = "a long enough password"
SESSION_JS = (
    "() => JSON.parse(sessionStorage.getItem('clinicChat:' + window.ClinicChat.serverUrl)).sessionId"
)


def serve(app: Any) -> tuple[str, Callable[[], None]]:
    """The console under uvicorn in a thread, as `python -m bot.console serve` runs it."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           ws="none", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "console did not start"
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return f"http://127.0.0.1:{port}", stop


@pytest.fixture
def stack_and_console(
    request: pytest.FixtureRequest, site_port: int, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, str]]:
    """Rasa + actions in opening hours, and the console on their database and Rasa URL."""
    request.getfixturevalue("model_path")
    factory: Callable[..., Any] = request.getfixturevalue("rasa_stack_factory")
    stack = factory(
        credentials=(
            "bot.channels.socketio.SocketIOInput:\n"
            "  session_persistence: true\n"
            "  cors_allowed_origins:\n"
            f"    - http://127.0.0.1:{site_port}\n"
        ),
        extra_env={"CLINIC_CLOCK": IN_HOURS},
    )
    monkeypatch.setenv("RASA_URL", stack.rasa_url)
    monkeypatch.setenv("RASA_AUTH_TOKEN", stack.token)
    monkeypatch.setenv("DATABASE_URL", stack.database_url)
    get_settings.cache_clear()
    database = Database(stack.database_url)
    store.create_user(database, username="rita", display_name="Rita Tan", role="receptionist",
                      password_hash=hash_password(PASSWORD))
    settings = Settings.from_env({"BOT_ENV": "test", "DATABASE_URL": stack.database_url,
                                  "RASA_URL": stack.rasa_url, "RASA_AUTH_TOKEN": stack.token})
    url, stop = serve(create_app(database, settings=settings))
    yield stack, url
    stop()
    database.dispose()
    get_settings.cache_clear()


def say(page: Page, text: str) -> None:
    """The patient types a message and presses Enter."""
    page.locator("#cc-input").fill(text)
    page.locator("#cc-input").press("Enter")


def test_staff_take_over_reply_and_hand_back_reach_the_patient_live(
    stack_and_console: tuple[Any, str],
    browser: Browser,
    site_port: int,
    make_site: Callable[..., DemoSite],
) -> None:
    stack, console_url = stack_and_console
    site = make_site(stack.rasa_url, site_port)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    patient_context = browser.new_context(viewport={"width": 360, "height": 740})
    staff_context = browser.new_context(viewport={"width": 1280, "height": 800})
    patient, staff = patient_context.new_page(), staff_context.new_page()
    try:
        patient.goto(site.url)
        patient.locator(".cc-launcher").click()
        expect(patient.locator(".cc-bot").first).to_contain_text("automated assistant",
                                                                 timeout=30_000)
        conversation = "web:" + patient.evaluate(SESSION_JS)

        staff.goto(console_url + "/login")
        staff.get_by_label("Username").fill("rita")
        staff.get_by_label("Password").fill(PASSWORD)
        staff.get_by_role("button", name="Sign in").click()
        expect(staff.get_by_role("heading", name="Inbox")).to_be_visible()
        staff.goto(f"{console_url}/conversations?channel=web")
        staff.locator(f'a[href="/conversations/{conversation}"]').first.click()
        expect(staff.locator("#transcript")).to_contain_text("/greet")
        staff.get_by_role("button", name="Take over and reply").click()
        expect(patient.locator(".cc-event.cc-staff_joined")).to_contain_text("Rita Tan",
                                                                             timeout=30_000)

        staff.get_by_label("Reply to the patient").fill("Hello, this is Rita. How can I help?")
        staff.get_by_role("button", name="Send reply").click()
        first = patient.locator(".cc-staff").last
        expect(first).to_contain_text("Hello, this is Rita. How can I help?", timeout=30_000)
        expect(first).to_contain_text("Rita Tan")

        # While taken over the bot stays silent: the next message the patient receives
        # after asking a topic question is the receptionist's second reply.
        bot_messages = patient.locator(".cc-bot").count()
        say(patient, "what is PRP?")
        expect(staff.locator("#transcript")).to_contain_text("what is PRP?", timeout=30_000)
        staff.get_by_label("Reply to the patient").fill("Dr Yong Ren can explain PRP on Tuesday.")
        staff.get_by_role("button", name="Send reply").click()
        expect(patient.locator(".cc-bot").last).to_contain_text("explain PRP on Tuesday",
                                                                timeout=30_000)
        # a bot answer would have come before the message reached the console's transcript
        assert patient.locator(".cc-bot").count() == bot_messages + 1
        assert patient.get_by_text(re.compile("platelet", re.I)).count() == 0
        patient.screenshot(path=str(ARTIFACTS / "patient-during-takeover-360x740.png"))
        staff.screenshot(path=str(ARTIFACTS / "console-during-takeover-1280x800.png"))
        transcript = staff.locator("#transcript")
        expect(transcript).to_contain_text("Rita Tan (staff)")
        assert "EXTERNAL" not in transcript.inner_text()  # staff triggers are not patient text

        staff.get_by_role("button", name="Hand back to the assistant").click()
        expect(patient.locator(".cc-event.cc-staff_left")).to_be_visible(timeout=30_000)
        say(patient, "what is PRP?")
        expect(patient.locator(".cc-bot").last).to_contain_text(re.compile("platelet", re.I),
                                                          timeout=30_000)
    finally:
        patient_context.close()
        staff_context.close()
