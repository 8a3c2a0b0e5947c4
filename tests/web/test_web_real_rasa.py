"""The widget against the real assistant: `rasa run` with the trained model and our channel.

Uses the project's `rasa_stack_factory` (tests/conftest.py). Skipped when no model has
been trained yet, so that running the widget tests never starts a training run;
`make test` trains first, so there it runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Browser, expect

if TYPE_CHECKING:
    from tests.web.conftest import DemoSite

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SESSION_JS = (
    "() => JSON.parse(sessionStorage.getItem('clinicChat:' + window.ClinicChat.serverUrl)).sessionId"
)


def test_widget_talks_to_real_rasa(
    request: pytest.FixtureRequest,
    browser: Browser,
    site_port: int,
    make_site: Callable[..., DemoSite],
) -> None:
    """Greeting with buttons, a quick reply answered, and the tracker is `web:<session_id>`."""
    request.getfixturevalue("model_path")  # trains once if `make train` has not
    factory: Callable[..., Any] = request.getfixturevalue("rasa_stack_factory")
    stack = factory(
        credentials=(
            "bot.channels.socketio.SocketIOInput:\n"
            "  session_persistence: true\n"
            "  cors_allowed_origins:\n"
            f"    - http://127.0.0.1:{site_port}\n"
        )
    )
    site = make_site(stack.rasa_url, site_port)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(site.url)
        page.locator(".cc-launcher").click()
        greeting = page.locator(".cc-bot").first
        expect(greeting).to_contain_text("automated assistant", timeout=30_000)
        replies = page.get_by_role("group", name="Suggested replies").get_by_role("button")
        expect(replies.first).to_be_visible()
        title = replies.first.inner_text()
        replies.first.click()
        expect(page.locator(".cc-user").last).to_contain_text(title)
        expect(page.locator(".cc-bot")).not_to_have_count(1, timeout=30_000)
        expect(page.locator(".cc-typing")).to_be_hidden(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "widget-real-rasa.png"))

        sid = page.evaluate(SESSION_JS)
        tracker = stack.tracker(f"web:{sid}")
        assert tracker["sender_id"] == f"web:{sid}"
        assert tracker["latest_input_channel"] == "socketio"
        texts = [e.get("text") for e in tracker["events"] if e.get("event") == "user"]
        assert texts[:1] == ["/greet"]
        assert len(texts) >= 2

        # Start over (shared computer): the old conversation is restarted in Rasa.
        page.get_by_role("button", name="Start over").click()
        page.get_by_role("button", name="Yes, start over").click()
        expect(page.locator(".cc-user")).to_have_count(0)
        expect(page.locator(".cc-bot").first).to_contain_text("automated assistant", timeout=30_000)
        assert page.evaluate(SESSION_JS) != sid
        ended = stack.tracker(f"web:{sid}")  # Rasa shows the events after the last restart
        assert [e for e in ended["events"] if e.get("event") == "user"] == []
        assert ended["slots"].get("last_topic") is None
    finally:
        context.close()


def test_real_answers_forms_and_alerts_carry_the_widget_markers(
    request: pytest.FixtureRequest,
    browser: Browser,
    site_port: int,
    make_site: Callable[..., DemoSite],
) -> None:
    """Real actions' markers reach the widget: thumbs, the phone keypad, the alert style.

    With the trained model and the action server: thumbs on the answer, the number keypad at
    the booking form's phone question, and an emergency typed there shown as an alert.
    """
    request.getfixturevalue("model_path")
    factory: Callable[..., Any] = request.getfixturevalue("rasa_stack_factory")
    stack = factory(
        credentials=(
            "bot.channels.socketio.SocketIOInput:\n"
            "  session_persistence: true\n"
            "  cors_allowed_origins:\n"
            f"    - http://127.0.0.1:{site_port}\n"
        )
    )
    site = make_site(stack.rasa_url, site_port)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    box = page.locator(".cc-input")

    def say(text: str) -> None:
        box.fill(text)
        box.press("Enter")

    try:
        page.goto(site.url)
        page.locator(".cc-launcher").click()
        expect(page.locator(".cc-bot").first).to_contain_text("automated assistant", timeout=30_000)
        say("what is sciatica?")
        answer = page.locator(".cc-bot").last
        thumbs = answer.get_by_role("group", name="Was this helpful?")
        expect(thumbs.get_by_role("button", name="Yes")).to_be_visible(timeout=30_000)
        expect(answer).to_contain_text("sciatic")
        expect(page.locator(".cc-bubble", has_text="Was this helpful?")).to_have_count(0)

        say("I'd like to book an appointment")
        page.get_by_role("button", name="Yes, that's OK").click(timeout=30_000)
        expect(box).to_have_attribute("autocomplete", "name", timeout=30_000)
        say("Alice Tan")
        expect(box).to_have_attribute("inputmode", "tel", timeout=30_000)
        expect(box).to_have_attribute("autocomplete", "tel")

        say("i've lost control of my bladder and my legs are going numb")
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("You mentioned", timeout=30_000)
        expect(alert).to_have_class(re.compile(r"\bcc-emergency\b"))
        expect(box).to_have_attribute("inputmode", "text")  # the form is paused
        page.screenshot(path=str(ARTIFACTS / "widget-real-rasa-alert.png"))
    finally:
        context.close()
