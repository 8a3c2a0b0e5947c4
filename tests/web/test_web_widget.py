"""The chat widget in real headless Chromium, against a real socket.io server.

Each test is a patient-visible promise: answers arrive, quick replies work, history
survives reloads, bot text can never become markup, it works by keyboard and on a phone,
other websites cannot use the bot, and nothing typed during an outage is lost.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis
from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect

if TYPE_CHECKING:
    from tests.web.conftest import DemoSite, PageEvents, Stack

PHONE: ViewportSize = {"width": 360, "height": 740}

GREETING = "Hello! I'm the clinic's assistant"
CLAIMS_REDIS_URL = "redis://127.0.0.1:6379/13"  # shared message-id claims, own key prefix per test
SESSION_JS = (
    "() => (JSON.parse(sessionStorage.getItem('clinicChat:' + window.ClinicChat.serverUrl))"
    " || {}).sessionId"
)


def launcher(page: Page) -> Locator:
    """The chat bubble button (its name changes with its state)."""
    return page.locator(".cc-launcher")


def open_chat(page: Page, url: str) -> None:
    """Load a demo page, open the widget and wait for the greeting (sent via initPayload)."""
    page.goto(url)
    launcher(page).click()
    expect(page.locator(".cc-bot").first).to_contain_text(GREETING)


def send(page: Page, text: str) -> None:
    """Type into the composer and press Enter, like a patient."""
    box = page.get_by_role("textbox", name="Your message")
    box.fill(text)
    box.press("Enter")


def answered(page: Page) -> None:
    """Wait until the server has acknowledged every message sent (the widget's queue is empty).

    The acknowledgement comes after the last reply and saves the tab's state once more, so a
    test that edits that state must wait for it or have its edit overwritten.
    """
    page.wait_for_function(
        "() => { const v = JSON.parse(sessionStorage.getItem("
        "'clinicChat:' + window.ClinicChat.serverUrl) || '{}');"
        " return Array.isArray(v.queue) && v.queue.length === 0 && !!v.sessionId; }"
    )


def session_id(page: Page) -> str:
    """Session id the widget keeps for this tab (sessionStorage)."""
    value = page.evaluate(SESSION_JS)
    assert isinstance(value, str)
    return value


def test_question_gets_an_answer_under_a_web_sender_id(
    page: Page, page_events: PageEvents, stack: Stack, artifacts: Path
) -> None:
    """A typed question is answered, links are safe, and staff see it as `web:<session_id>`."""
    open_chat(page, stack.site.url)
    send(page, "What are your opening hours?")
    answer = page.locator(".cc-bot").last
    expect(answer).to_contain_text("We are open Monday to Friday")
    link = answer.get_by_role("link", name="https://example.org/hours")
    expect(link).to_have_attribute("href", "https://example.org/hours")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    page.screenshot(path=str(artifacts / "widget-desktop-open.png"))

    sid = session_id(page)
    turns = [t for t in stack.bot.received() if t["text"] == "What are your opening hours?"]
    assert turns[-1]["sender_id"] == f"web:{sid}"
    assert turns[-1]["input_channel"] == "socketio"
    assert not page_events.errors


def test_quick_reply_sends_payload_and_shows_title(
    page: Page, stack: Stack, artifacts: Path
) -> None:
    """A quick reply sends its payload to Rasa but shows the patient its title."""
    open_chat(page, stack.site.url)
    page.screenshot(path=str(artifacts / "widget-desktop-greeting.png"))
    page.get_by_role("button", name="Book a consultation").click()
    expect(page.locator(".cc-user").last).to_contain_text("Book a consultation")
    expect(page.locator(".cc-bot").last).to_contain_text("Happy to help you book")
    follow_ups = page.get_by_role("group", name="Suggested replies")
    expect(follow_ups.get_by_role("button")).to_have_count(2)
    assert stack.bot.received()[-1]["text"] == "/book"
    expect(page.get_by_role("button", name="Opening hours")).to_have_count(0)


def test_history_survives_reload_and_navigation(page: Page, stack: Stack) -> None:
    """Reloads and page changes keep the view and the session (and do not greet again)."""
    open_chat(page, stack.site.url)
    send(page, "Do you treat knee pain?")
    expect(page.locator(".cc-bot").last).to_contain_text("You asked: Do you treat knee pain?")
    sid = session_id(page)

    page.reload()
    expect(page.get_by_role("dialog")).to_be_visible()  # stays open across reloads
    expect(page.locator(".cc-user")).to_contain_text(["Do you treat knee pain?"])
    assert session_id(page) == sid

    page.get_by_role("link", name="Treatments").click()
    page.wait_for_url("**/services.html")
    expect(page.locator(".cc-user")).to_contain_text(["Do you treat knee pain?"])
    send(page, "And back pain?")
    expect(page.locator(".cc-bot").last).to_contain_text("You asked: And back pain?")
    senders = {t["sender_id"] for t in stack.bot.received() if "pain?" in t["text"]}
    assert senders == {f"web:{sid}"}
    greetings = [t for t in stack.bot.received() if t["sender_id"] == f"web:{sid}"
                 and t["text"] == "/greet"]
    assert len(greetings) == 1  # reloads do not greet again


def test_html_in_bot_text_is_shown_as_text(
    page: Page, page_events: PageEvents, stack: Stack
) -> None:
    """Markup in a bot message is shown literally, live and from stored history."""
    open_chat(page, stack.site.url)
    send(page, "show me some html")
    literal = "<script>alert(1)</script><b>x</b><img src=x onerror=alert(2)>"
    expect(page.locator(".cc-bot").last).to_contain_text(literal)
    for _ in range(2):  # live rendering, then rendering from stored history
        log = page.locator("[role=log]")
        expect(log.locator("script, b, img")).to_have_count(0)
        page.wait_for_timeout(300)
        assert page_events.dialogs == []
        page.reload()
        expect(page.locator(".cc-bot").last).to_contain_text(literal)


def test_links_are_clickable_only_for_safe_schemes(
    page: Page, page_events: PageEvents, stack: Stack
) -> None:
    """Markdown and bare links work for http(s)/tel/mailto; javascript: stays text."""
    open_chat(page, stack.site.url)
    send(page, "any links?")
    answer = page.locator(".cc-bot").last
    expect(answer).to_contain_text("[click me](javascript:alert(3))")
    expect(answer.get_by_role("link", name="online")).to_have_attribute(
        "href", "https://example.org/book"
    )
    expect(answer.get_by_role("link", name="the clinic")).to_have_attribute(
        "href", "tel:+6500000000"
    )
    expect(answer.get_by_role("link")).to_have_count(2)
    assert page_events.dialogs == []


def test_long_answer_is_shown_from_its_start(page: Page, stack: Stack) -> None:
    """An answer taller than the panel is scrolled to its first line, not its last."""
    open_chat(page, stack.site.url)
    send(page, "give me a long answer")
    answer = page.locator(".cc-bot").last
    expect(answer).to_contain_text("Point 24")
    page.wait_for_timeout(200)
    scroller, bubble = page.locator(".cc-scroll"), answer.locator(".cc-bubble")
    view, top = scroller.bounding_box(), bubble.bounding_box()
    assert view is not None and top is not None
    assert view["y"] <= top["y"] < view["y"] + 60  # the answer's first line is in view


def test_typing_indicator_shows_while_waiting(page: Page, stack: Stack, artifacts: Path) -> None:
    """Patients see the assistant is working while a slow answer is on its way."""
    open_chat(page, stack.site.url)
    typing = page.locator(".cc-typing")
    expect(typing).to_be_hidden()
    send(page, "a slow question")
    expect(typing).to_be_visible()
    expect(typing).to_contain_text("The assistant is typing")
    page.screenshot(path=str(artifacts / "widget-desktop-typing.png"))
    expect(page.locator(".cc-bot").last).to_contain_text("You asked: a slow question")
    expect(typing).to_be_hidden()


def test_keyboard_only(page: Page, stack: Stack) -> None:
    """Tab reaches the launcher, Enter opens and sends, Escape closes back to it."""
    page.goto(stack.site.url)
    for _ in range(10):
        page.keyboard.press("Tab")
        if launcher(page).evaluate("el => el.getRootNode().activeElement === el"):
            break
    else:
        pytest.fail("Tab never reached the chat launcher")
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    box = page.get_by_role("textbox", name="Your message")
    expect(box).to_be_focused()
    expect(page.locator(".cc-bot").first).to_contain_text(GREETING)
    page.keyboard.type("Where is the clinic?")
    page.keyboard.press("Enter")
    expect(page.locator(".cc-bot").last).to_contain_text("You asked: Where is the clinic?")
    expect(box).to_have_value("")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(launcher(page)).to_be_focused()
    expect(launcher(page)).to_have_attribute("aria-expanded", "false")


def test_screen_reader_structure(page: Page, stack: Stack) -> None:
    """New messages are announced politely, controls have names, the disclaimer is there."""
    open_chat(page, stack.site.url)
    log = page.get_by_role("log", name="Conversation")
    expect(log).to_have_attribute("aria-live", "polite")
    expect(page.get_by_role("dialog", name="Clinic assistant")).to_be_visible()
    expect(launcher(page)).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_role("button", name="Send message")).to_be_visible()
    expect(page.get_by_role("button", name="Close chat").first).to_be_visible()
    disclaimer = page.locator(".cc-disclaimer")
    expect(disclaimer).to_contain_text("not medical advice")
    expect(disclaimer).to_contain_text("In an emergency call your local emergency number")
    expect(log.locator(".cc-bot .cc-sr").first).to_have_text("Assistant: ")


def test_start_over_clears_the_view_and_starts_a_new_session(page: Page, stack: Stack) -> None:
    """Start over empties the view and continues under a new conversation id."""
    open_chat(page, stack.site.url)
    send(page, "first conversation")
    expect(page.locator(".cc-bot").last).to_contain_text("You asked: first conversation")
    old = session_id(page)
    page.get_by_role("button", name="Start over").click()
    page.get_by_role("button", name="Cancel").click()  # asks first; cancelling keeps it
    expect(page.locator(".cc-user")).to_have_count(1)
    assert session_id(page) == old
    page.get_by_role("button", name="Start over").click()
    page.get_by_role("button", name="Yes, start over").click()
    expect(page.locator(".cc-user")).to_have_count(0)
    expect(page.locator(".cc-bot")).to_have_count(1)
    expect(page.locator(".cc-bot").first).to_contain_text(GREETING)
    new = session_id(page)
    assert new != old
    send(page, "second conversation")
    expect(page.locator(".cc-bot").last).to_contain_text("You asked: second conversation")
    turn = [t for t in stack.bot.received() if t["text"] == "second conversation"][-1]
    assert turn["sender_id"] == f"web:{new}"
    ended = [t["sender_id"] for t in stack.bot.received() if t["text"] == "/restart"]
    assert f"web:{old}" in ended  # the old conversation ended in Rasa: its slots are cleared


def test_the_next_person_on_the_same_browser_starts_afresh(browser: Browser, stack: Stack) -> None:
    """Patient A chats and closes the tab; B opens the site on the same computer."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        first = context.new_page()
        open_chat(first, stack.site.url)
        send(first, "My name is Alice Tan, my number is 9123 4567")
        expect(first.locator(".cc-bot").last).to_contain_text("You asked: My name is Alice Tan")
        alice = session_id(first)
        first.close()

        second = context.new_page()
        open_chat(second, stack.site.url)
        expect(second.locator(".cc-user")).to_have_count(0)
        expect(second.get_by_role("log")).not_to_contain_text("Alice")
        send(second, "What are your opening hours?")
        expect(second.locator(".cc-bot").last).to_contain_text("We are open")
        bob = session_id(second)
        assert bob != alice
        turn = [t for t in stack.bot.received() if t["text"] == "What are your opening hours?"][-1]
        assert turn["sender_id"] == f"web:{bob}"
        assert not second.evaluate("() => Object.keys(localStorage).filter(k => k.startsWith('clinicChat'))")
    finally:
        context.close()


def test_a_conversation_left_alone_for_30_minutes_ends(page: Page, stack: Stack) -> None:
    """Back after 31 minutes (same tab): nothing shown, a new conversation, the old one ended."""
    open_chat(page, stack.site.url)
    send(page, "My name is Alice Tan")
    expect(page.locator(".cc-bot").last).to_contain_text("You asked: My name is Alice Tan")
    answered(page)
    old = session_id(page)
    page.evaluate(
        "() => { const k = 'clinicChat:' + window.ClinicChat.serverUrl;"
        " const v = JSON.parse(sessionStorage.getItem(k)); v.at -= 31 * 60e3;"
        " sessionStorage.setItem(k, JSON.stringify(v)); }"
    )
    page.reload()
    launcher(page).click() if page.get_by_role("dialog").is_hidden() else None
    expect(page.locator(".cc-bot").first).to_contain_text(GREETING)
    expect(page.locator(".cc-user")).to_have_count(0)
    expect(page.get_by_role("log")).not_to_contain_text("Alice")
    assert session_id(page) != old
    ended = [t["sender_id"] for t in stack.bot.received() if t["text"] == "/restart"]
    assert f"web:{old}" in ended


def test_phone_layout_is_full_screen(browser: Browser, stack: Stack, artifacts: Path) -> None:
    """On a 360 px phone the chat fills the screen with 16 px text and 44 px targets."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(stack.site.url)
        expect(launcher(page)).to_be_visible()
        page.wait_for_timeout(300)  # first paint settles
        page.screenshot(path=str(artifacts / "widget-phone-closed.png"))
        open_chat(page, stack.site.url)
        page.screenshot(path=str(artifacts / "widget-phone-greeting.png"))
        send(page, "What are your opening hours?")
        expect(page.locator(".cc-bot").last).to_contain_text("We are open")
        box = page.get_by_role("dialog").bounding_box()
        assert box == {"x": 0, "y": 0, "width": PHONE["width"], "height": PHONE["height"]}
        font = page.get_by_role("textbox", name="Your message").evaluate(
            "el => getComputedStyle(el).fontSize"
        )
        assert font == "16px"  # smaller makes iOS zoom in on focus
        for button in page.locator(".cc-reply, .cc-send, .cc-close, .cc-restart").all():
            size = button.bounding_box()
            assert size is not None and size["height"] >= 44
        page.screenshot(path=str(artifacts / "widget-phone-open.png"))
    finally:
        context.close()


def test_desktop_closed_screenshot(page: Page, stack: Stack, artifacts: Path) -> None:
    """Screenshot of the page with the closed launcher, for reviewing the look."""
    page.goto(stack.site.url)
    expect(launcher(page)).to_be_visible()
    page.wait_for_timeout(200)
    page.screenshot(path=str(artifacts / "widget-desktop-closed.png"))


def test_no_requests_leave_the_two_local_servers(page: Page, stack: Stack) -> None:
    """No CDN, font or tracker: every request goes to the site or the bot."""
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    open_chat(page, stack.site.url)
    send(page, "hello")
    expect(page.locator(".cc-bot").last).to_contain_text(GREETING)
    allowed = (stack.site.url + "/", stack.bot.url + "/", stack.bot.url.replace("http", "ws"))
    assert urls and all(url.startswith(allowed) for url in urls), urls


def test_page_from_a_disallowed_origin_cannot_chat(
    page: Page, stack: Stack, make_site: Callable[..., DemoSite]
) -> None:
    """A site not in the allowed origins gets no conversation with the bot."""
    other = make_site(stack.bot.url)  # same bot, but served from a port it does not allow
    before = len(stack.bot.received())
    page.goto(other.url)
    launcher(page).click()
    send(page, "can I talk from here?")
    expect(page.locator(".cc-status")).to_contain_text("Can’t reach", timeout=20_000)
    expect(page.locator(".cc-bot")).to_have_count(0)
    assert len(stack.bot.received()) == before


def test_reconnects_and_delivers_what_was_typed_offline(
    page: Page, make_stack: Callable[..., Stack]
) -> None:
    """A message typed while the server is down is sent, once, after it comes back."""
    own = make_stack()  # this test stops its server; keep the shared one running
    open_chat(page, own.site.url)
    sid = session_id(page)
    status = page.locator(".cc-status")

    own.bot.stop()
    expect(status).to_contain_text("Reconnecting", timeout=15_000)
    send(page, "typed while offline")
    expect(page.locator(".cc-user").last).to_contain_text("typed while offline")
    expect(status).to_contain_text("will be sent")
    own.bot.start()  # a new process: it only knows what it received since
    expect(page.locator(".cc-bot").last).to_contain_text(
        "You asked: typed while offline", timeout=30_000
    )
    expect(status).not_to_contain_text("Reconnecting")
    send(page, "and after reconnecting")
    expect(page.locator(".cc-bot").last).to_contain_text("You asked: and after reconnecting")
    texts = [t["text"] for t in own.bot.received()]
    assert texts == ["typed while offline", "and after reconnecting"]

    own.bot.stop()  # offline again, and this time the patient moves to another page
    expect(status).to_contain_text("Reconnecting", timeout=15_000)
    send(page, "typed before navigating")
    page.get_by_role("link", name="Treatments").click()
    page.wait_for_url("**/services.html")
    expect(page.locator(".cc-user").last).to_contain_text("typed before navigating")
    own.bot.start()
    expect(page.locator(".cc-bot").last).to_contain_text(
        "You asked: typed before navigating", timeout=30_000
    )
    received = own.bot.received()
    assert [t["text"] for t in received] == ["typed before navigating"]
    assert {t["sender_id"] for t in received} == {f"web:{sid}"}
    assert session_id(page) == sid


def test_a_message_whose_server_crashed_mid_answer_is_answered_after_the_restart(
    page: Page, make_stack: Callable[..., Stack]
) -> None:
    """The server claims the message, hangs and is killed: the widget's re-send must get an answer.

    The claim (in the real Redis, as with several servers) outlives the crash by one lease;
    until then the restarted server says "in progress" and the widget tries again.
    """
    prefix = f"test-widget-claims-{uuid.uuid4().hex[:10]}:"
    store = redis.Redis.from_url(CLAIMS_REDIS_URL)
    own = make_stack(env={"CHANNEL_CACHE_URL": CLAIMS_REDIS_URL, "CHANNEL_CACHE_PREFIX": prefix,
                          "FAKE_RASA_STALL": "1"})
    try:
        open_chat(page, own.site.url)
        send(page, "please stall on this one")
        deadline = time.monotonic() + 15
        while not any(store.get(key).startswith(b"claim:") for key in store.scan_iter(match=f"{prefix}*")):
            assert time.monotonic() < deadline, "the server never claimed the message"
            time.sleep(0.05)
        own.bot.kill()
        expect(page.locator(".cc-status")).to_contain_text("Reconnecting", timeout=15_000)
        del own.bot.env["FAKE_RASA_STALL"]
        own.bot.start()  # the same port, a new process; the dead one's claim is still in Redis
        expect(page.locator(".cc-bot").last).to_contain_text(
            "You asked: please stall on this one", timeout=45_000
        )
        assert [t["text"] for t in own.bot.received()] == ["please stall on this one"]
        expect(page.locator(".cc-typing")).to_be_hidden()
    finally:
        keys = list(store.scan_iter(match=f"{prefix}*"))
        if keys:
            store.delete(*keys)
        store.close()


def in_view(page: Page, item: Locator) -> bool:
    """Whether `item` is inside the visible part of the conversation."""
    view, box = page.locator(".cc-scroll").bounding_box(), item.bounding_box()
    assert view is not None and box is not None
    return view["y"] - 1 <= box["y"] and box["y"] + min(box["height"], 40) <= view["y"] + view["height"] + 1


def test_reopens_at_the_newest_message_after_reload_and_navigation(page: Page, stack: Stack) -> None:
    """A long history reopens scrolled to its end, not its start, on reload and on a new page."""
    open_chat(page, stack.site.url)
    for n in range(1, 9):
        send(page, f"question number {n}")
        expect(page.locator(".cc-bot").last).to_contain_text(f"You asked: question number {n}")
    newest = page.locator(".cc-bubble").last
    expect(newest).to_contain_text("question number 8")
    assert in_view(page, newest)
    for move in ("reload", "navigate"):
        if move == "reload":
            page.reload()
        else:
            page.get_by_role("link", name="Treatments").click()
            page.wait_for_url("**/services.html")
        newest = page.locator(".cc-bubble").last
        expect(newest).to_contain_text("You asked: question number 8")
        page.wait_for_function("() => document.getElementById('clinic-chat').shadowRoot"
                               ".querySelector('.cc-scroll').scrollHeight > 0")
        page.wait_for_timeout(300)  # let the stylesheet and layout settle
        assert in_view(page, newest), move
        assert not in_view(page, page.locator(".cc-bubble").first), move


EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F]")


def test_emoji_in_button_titles_become_svg_icons_with_text_labels(page: Page, stack: Stack) -> None:
    """"✅ Confirm" shows a drawn tick and the word, never a character that needs an emoji font."""
    open_chat(page, stack.site.url)
    send(page, "confirm my booking")
    replies = page.get_by_role("group", name="Suggested replies")
    confirm = replies.get_by_role("button", name="Confirm", exact=True)
    change = replies.get_by_role("button", name="Change something", exact=True)
    expect(confirm).to_have_text("Confirm")
    expect(confirm.locator("svg")).to_have_count(1)
    expect(change.locator("svg")).to_have_count(1)
    expect(replies.get_by_role("button", name="Cancel").locator("svg")).to_have_count(0)
    assert not EMOJI.search(page.locator("[role=log]").inner_text())
    confirm.click()
    expect(page.locator(".cc-user .cc-bubble").last).to_have_text(re.compile(r"Confirm$"))
    assert stack.bot.received()[-1]["text"] == "/affirm"  # the payload is unchanged


def test_an_emergency_alert_has_no_emoji_and_looks_like_an_alert(page: Page, stack: Stack) -> None:
    """The alert's "⚠️" becomes the alert style's drawn icon."""
    open_chat(page, stack.site.url)
    send(page, "I have chest pain")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("This could be an emergency")
    assert not EMOJI.search(alert.inner_text())
    expect(alert.locator(".cc-avatar svg")).to_have_count(1)


def test_start_over_confirms_inside_the_widget_and_escape_cancels(
    page: Page, page_events: PageEvents, stack: Stack
) -> None:
    """Start over asks in the widget (no browser dialog); Escape or Cancel keep everything."""
    open_chat(page, stack.site.url)
    send(page, "keep this conversation")
    expect(page.locator(".cc-bot").last).to_contain_text("You asked: keep this conversation")
    old = session_id(page)
    restart = page.get_by_role("button", name="Start over: new conversation")
    restart.click()
    confirm = page.get_by_role("alertdialog", name="Start a new conversation?")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("will be cleared")
    expect(restart).to_have_attribute("aria-expanded", "true")
    expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(confirm).to_be_hidden()
    expect(page.get_by_role("dialog", name="Clinic assistant")).to_be_visible()  # still open
    expect(restart).to_be_focused()
    expect(page.locator(".cc-user")).to_have_count(1)
    restart.click()
    page.get_by_role("button", name="Close chat").first.click()  # closing also cancels it
    launcher(page).click()
    expect(confirm).to_be_hidden()
    assert session_id(page) == old
    assert page_events.dialogs == []


def test_an_answer_is_one_message_with_compact_feedback_icons(page: Page, stack: Stack) -> None:
    """The answer's bubbles and its "Was this helpful?" are one message; thumbs send the payloads."""
    open_chat(page, stack.site.url)
    send(page, "tell me about injections")
    answer = page.locator(".cc-bot").last
    expect(answer.locator(".cc-bubble")).to_have_count(3)
    expect(answer).to_contain_text("Injections can ease pain")
    thumbs = answer.get_by_role("group", name="Was this helpful?")
    yes, no = thumbs.get_by_role("button", name="Yes"), thumbs.get_by_role("button", name="No")
    expect(yes.locator("svg")).to_have_count(1)
    for button in (yes, no):
        box = button.bounding_box()
        assert box is not None and box["width"] <= 44 and box["height"] <= 44  # not a pill
    assert in_view(page, yes)  # on a laptop screen without scrolling
    expect(page.locator(".cc-bubble", has_text="Was this helpful?")).to_have_count(0)
    expect(answer.locator(".cc-meta")).to_contain_text("Clinic assistant")
    expect(answer.locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))
    yes.click()
    expect(page.locator(".cc-bot").last).to_contain_text("Thanks for your feedback")
    assert stack.bot.received()[-1]["text"] == "/affirm"
    page.reload()
    yes = page.locator(".cc-feedback").get_by_role("button", name="Yes")
    expect(yes).to_have_attribute("aria-pressed", "true")
    expect(yes).to_be_disabled()


def test_staff_joining_and_replying_are_shown_with_the_staff_members_name(
    page: Page, stack: Stack
) -> None:
    """"Sarah from the clinic has joined", then her reply under her name, not the assistant's."""
    open_chat(page, stack.site.url)
    send(page, "can I talk to a person?")
    joined = page.locator(".cc-event.cc-staff_joined")
    expect(joined).to_contain_text("Sarah from the clinic has joined the conversation.")
    staff = page.locator(".cc-staff")
    expect(staff).to_contain_text("Hello, this is Sarah at the clinic")
    expect(staff.locator(".cc-meta")).to_contain_text("Sarah")
    expect(staff.locator(".cc-meta")).to_contain_text("Clinic staff")
    expect(staff.locator(".cc-sr").first).to_have_text("Sarah (clinic staff): ")
    expect(staff.locator(".cc-meta")).not_to_contain_text("Clinic assistant")
    send(page, "bye staff")
    expect(page.locator(".cc-event.cc-staff_left")).to_contain_text("Sarah has left")


def test_the_keyboard_follows_the_question(page: Page, stack: Stack) -> None:
    """A phone number question opens the number keypad, an email one the email keyboard."""
    open_chat(page, stack.site.url)
    box = page.locator(".cc-input")
    expect(box).to_have_attribute("inputmode", "text")
    send(page, "please call me back")
    expect(box).to_have_attribute("inputmode", "tel")
    expect(box).to_have_attribute("autocomplete", "tel")
    expect(box).to_have_attribute("placeholder", re.compile("mobile number"))
    expect(page.get_by_role("textbox", name="Your message: your mobile number")).to_be_visible()
    page.reload()  # still the question being asked
    expect(box).to_have_attribute("inputmode", "tel")
    send(page, "9123 4567")
    expect(page.locator(".cc-bot").last).to_contain_text("Thanks. Anything else?")
    expect(box).to_have_attribute("inputmode", "text")
    expect(box).to_have_attribute("autocomplete", "off")
    send(page, "email me")
    expect(box).to_have_attribute("inputmode", "email")
    expect(box).to_have_attribute("autocomplete", "email")


def test_an_emergency_reply_is_an_alert_with_tap_to_call(page: Page, stack: Stack) -> None:
    """Alert colour and icon, role=alert, and a tel: link to the emergency number."""
    open_chat(page, stack.site.url)
    send(page, "I have chest pain")
    alert = page.get_by_role("alert")
    expect(alert).to_have_class(re.compile(r"\bcc-emergency\b"))
    expect(alert.locator(".cc-bubble")).to_have_count(3)  # one message, not three
    expect(alert.locator(".cc-meta")).to_contain_text("Emergency advice")
    call = alert.get_by_role("link", name="Call 995")
    expect(call).to_have_attribute("href", "tel:995")
    colour = alert.locator(".cc-bubble").first.evaluate("el => getComputedStyle(el).backgroundColor")
    answer = page.locator(".cc-bot .cc-bubble").first.evaluate("el => getComputedStyle(el).backgroundColor")
    assert colour != answer
    send(page, "I feel hopeless")
    crisis = page.locator(".cc-crisis")
    expect(crisis).to_contain_text("You don't have to face it alone")
    expect(crisis.get_by_role("link", name=re.compile("^Call"))).to_have_count(0)


def test_on_a_phone_the_notice_shrinks_and_the_launcher_is_round(browser: Browser, stack: Stack) -> None:
    """After the first message the notice is one line ("i" expands it); the launcher is 56 px round."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(stack.site.url)
        box = launcher(page).bounding_box()
        assert box is not None and box["width"] == box["height"] <= 60
        expect(launcher(page)).to_have_accessible_name("Open chat: Clinic assistant")
        open_chat(page, stack.site.url)
        notice = page.locator(".cc-notice")
        full = notice.bounding_box()
        assert full is not None and full["height"] > 50  # in full before the first message
        send(page, "What are your opening hours?")
        expect(page.locator(".cc-bot").last).to_contain_text("We are open")
        header, short = page.locator(".cc-header").bounding_box(), notice.bounding_box()
        assert header is not None and short is not None
        assert short["height"] <= 40 and header["height"] + short["height"] <= 110
        expect(page.locator(".cc-disclaimer")).to_contain_text("not medical advice")  # still read out
        more = page.get_by_role("button", name="Show the full notice")
        expect(more).to_have_attribute("aria-expanded", "false")
        more.click()
        expect(page.get_by_role("button", name="Show less of the notice")).to_have_attribute(
            "aria-expanded", "true"
        )
        expanded = notice.bounding_box()
        assert expanded is not None and expanded["height"] > 50
    finally:
        context.close()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_screenshots_of_every_state(
    browser: Browser, make_stack: Callable[..., Stack], artifacts: Path, size: str
) -> None:
    """Each state a patient meets, at 1280x800 and 360x740, in test-artifacts/widget/."""
    own = make_stack()  # this test stops its server for the offline state
    phone = size == "phone"
    context = browser.new_context(
        viewport=PHONE if phone else {"width": 1280, "height": 800}, is_mobile=phone, has_touch=phone
    )
    page = context.new_page()
    folder = artifacts / "widget"
    folder.mkdir(exist_ok=True)

    def shot(state: str) -> None:
        page.wait_for_timeout(250)  # animations and scrolling settle
        page.screenshot(path=str(folder / f"{state}-{size}.png"))

    try:
        page.goto(own.site.url)
        expect(launcher(page)).to_be_visible()
        shot("1-closed")
        launcher(page).click()
        expect(page.locator(".cc-bot").first).to_contain_text(GREETING)
        shot("2-open-empty")
        send(page, "tell me about injections")
        expect(page.locator(".cc-feedback")).to_be_visible()
        shot("3-answer-with-feedback")
        send(page, "please call me back")
        expect(page.locator(".cc-input")).to_have_attribute("inputmode", "tel")
        page.locator(".cc-input").focus()
        shot("4-form-question-keypad")
        send(page, "9123 4567")
        send(page, "I have chest pain")
        expect(page.get_by_role("alert")).to_contain_text("Call 995")
        shot("5-emergency-alert")
        send(page, "can I talk to a person?")
        expect(page.locator(".cc-staff")).to_be_visible()
        shot("6-staff-joined-and-reply")
        page.get_by_role("button", name="Start over: new conversation").click()
        expect(page.get_by_role("alertdialog")).to_be_visible()
        shot("7-start-over-confirm")
        page.get_by_role("button", name="Cancel").click()
        own.bot.stop()
        expect(page.locator(".cc-status")).to_contain_text("Reconnecting", timeout=15_000)
        send(page, "typed while offline")
        expect(page.locator(".cc-status")).to_contain_text("will be sent")
        shot("8-offline")
    finally:
        context.close()
