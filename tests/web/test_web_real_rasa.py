"""The widget against the real assistant: `rasa run` with the trained model and our channel.

Uses the project's `rasa_stack_factory` (tests/conftest.py). Skipped when no model has
been trained yet, so that running the widget tests never starts a training run;
`make test` trains first, so there it runs.
"""

from __future__ import annotations

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
