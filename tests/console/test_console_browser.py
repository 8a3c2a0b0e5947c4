"""The console in Debian's Chromium: what a receptionist and a clinician actually click.

Sign in; find the seeded red-flag conversation by filter, open it, acknowledge its alert;
move a booking to contacted; a `<script>` message stays inert text. Screenshots of every
page at laptop (1280x800) and tablet (820x1180) sizes go to test-artifacts/console/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from console_seed import PASSWORD
from console_support import ConsoleServer
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bot.settings import PROJECT_ROOT
from bot.storage import console as store

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "console"
SIZES = {"laptop": {"width": 1280, "height": 800}, "tablet": {"width": 820, "height": 1180}}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium through Playwright (no downloaded browsers)."""
    if not CHROMIUM.exists():
        pytest.skip("needs /usr/bin/chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                              headless=True)
        yield chromium
        chromium.close()


def sign_in(page: Page, console: ConsoleServer, username: str) -> None:
    page.goto(console.url + "/")
    expect(page).to_have_url(f"{console.url}/login?next=/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()


def test_clinician_finds_the_red_flag_conversation_and_acknowledges_it(
        console: ConsoleServer, browser: Browser) -> None:
    page = browser.new_page(viewport=SIZES["laptop"])
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    sign_in(page, console, "colin")
    page.get_by_role("link", name="Conversations").click()
    page.get_by_label("Flag").select_option("red_flag")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.conversations tbody tr")).to_have_count(1)
    page.locator("table.conversations a.rowlink").click()
    expect(page.get_by_role("heading", name=console.ids["red"])).to_be_visible()
    expect(page.locator(".transcript")).to_contain_text("can't control my bladder")
    page.get_by_role("link", name="Review").click()
    page.get_by_label("Called the patient: advised emergency care").check()
    page.get_by_role("button", name="Acknowledge as Dr Colin Ng").click()
    expect(page.locator(".notice")).to_have_text("Alert acknowledged.")
    alert, _ = store.get_alert(console.db, console.ids["alert"])
    assert alert.acknowledged_by_id == console.users["clinician"].id
    assert errors == []


def test_receptionist_moves_a_booking_to_contacted(console: ConsoleServer, browser: Browser) -> None:
    page = browser.new_page(viewport=SIZES["tablet"])
    sign_in(page, console, "rita")
    page.get_by_role("link", name="Booking request BK-7Q4M2").click()
    expect(page.get_by_text("+6591234567")).to_be_visible()
    page.locator("label.pill", has_text="Contacted").click()
    page.get_by_label("Note").fill("Called, will ring back Tuesday")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".notice")).to_have_text("Saved: Contacted.")
    expect(page.locator(".history")).to_contain_text("Called, will ring back Tuesday")
    assert store.get_booking(console.db, console.ids["booking"]).status == "contacted"


def test_a_script_message_is_shown_as_text_and_never_runs(console: ConsoleServer, browser: Browser) -> None:
    page = browser.new_page(viewport=SIZES["laptop"])
    sign_in(page, console, "ada")
    page.goto(f"{console.url}/conversations/{console.ids['xss']}")
    expect(page.locator(".msg.user .bubble").first).to_have_text("<script>window.__xss = 1</script>hello")
    expect(page.locator(".msg.bot .bubble").first).to_contain_text('<img src=x onerror=')
    page.goto(console.url + "/conversations?flag=thumbs_down&channel=telegram&q=script")
    expect(page.locator("td.topics").first).to_contain_text("<b>topic</b>")
    assert page.evaluate("window.__xss === undefined")


def test_screenshots_of_every_page(console: ConsoleServer, browser: Browser) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pages = {
        "inbox": "/", "conversations": "/conversations", "transcript": f"/conversations/{console.ids['book']}",
        "takeover": f"/conversations/{console.ids['live']}", "queue": "/queue",
        "booking": f"/queue/bookings/{console.ids['booking']}", "alerts": "/alerts",
        "alert": f"/alerts/{console.ids['alert']}", "improve": "/improve", "dashboard": "/dashboard",
        "users": "/admin/users", "audit": "/admin/audit", "retention": "/admin/retention",
    }
    for size, viewport in SIZES.items():
        page = browser.new_page(viewport=viewport)  # type: ignore[arg-type]
        page.goto(console.url + "/login")
        page.screenshot(path=str(ARTIFACTS / f"login-{size}.png"))
        sign_in(page, console, "ada")
        for name, path in pages.items():
            page.goto(console.url + path)
            expect(page.locator("main h1")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / f"{name}-{size}.png"))
        page.close()
    assert len(list(ARTIFACTS.glob("*.png"))) >= 2 * (len(pages) + 1)
