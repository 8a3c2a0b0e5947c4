"""Fixtures for the widget tests: a real socket.io server, the demo site, headless Chromium.

The bot side is `fake_rasa.py` (Rasa's `configure_app` + our `SocketIOInput` + a scripted
responder) in a subprocess, so tests exercise real sockets, origin checks and restarts
without training a model. The demo site is `bot.web.serve` in a thread. Chromium is
Debian's (/usr/bin/chromium), driven by Playwright's Python API; `playwright install` is
never needed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Dialog, Page, ViewportSize, sync_playwright

from bot.web.serve import make_server

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
LOGS = ARTIFACTS / "logs"
FAKE_RASA = Path(__file__).resolve().parent / "fake_rasa.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class BotServer:
    """A `fake_rasa.py` process that a test can stop and start again on the same port."""

    origins: list[str]
    stock: bool = False
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)  # added to this process's environment

    @property
    def url(self) -> str:
        """Base URL the widget connects to."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> None:
        """Start the server and wait until its socket.io channel answers."""
        command = [sys.executable, str(FAKE_RASA), "--port", str(self.port)]
        for origin in self.origins:
            command += ["--origin", origin]
        if self.stock:
            command.append("--stock")
        LOGS.mkdir(parents=True, exist_ok=True)
        log = (LOGS / f"fake-rasa-{self.port}.log").open("ab")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **self.env}
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fake Rasa exited early; see {log.name}")
            try:
                if requests.get(f"{self.url}/webhooks/socketio/", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"fake Rasa did not start in {timeout}s; see {log.name}")

    def stop(self) -> None:
        """Stop the process (dropping every socket) and wait for the port to be free."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def kill(self) -> None:
        """A crash: SIGKILL, no shutdown of any kind."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def received(self) -> list[dict[str, Any]]:
        """User messages the scripted agent has handled, in order."""
        return list(requests.get(f"{self.url}/test/received", timeout=5).json())


@dataclass
class DemoSite:
    """`bot.web.serve` on a free port, pointing the widget at one bot server."""

    rasa_url: str
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        """Serve in a daemon thread."""
        self.server = make_server("127.0.0.1", self.port, self.rasa_url, quiet=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """Origin of the demo site (also what must be in the allowed origins)."""
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Stack:
    """A bot server and the demo site allowed to talk to it."""

    bot: BotServer
    site: DemoSite


@pytest.fixture(scope="session")
def make_stack() -> Iterator[Callable[..., Stack]]:
    """Factory for independent bot + demo site pairs; everything is stopped at the end."""
    stacks: list[Stack] = []
    for old_log in LOGS.glob("fake-rasa-*.log"):  # keep only this run's server logs
        old_log.unlink()

    def make(stock: bool = False, env: dict[str, str] | None = None) -> Stack:
        site_port = free_port()
        bot = BotServer(origins=[f"http://127.0.0.1:{site_port}"], stock=stock, env=dict(env or {}))
        bot.start()
        stack = Stack(bot, DemoSite(bot.url, port=site_port))
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.site.close()
        stack.bot.stop()


@pytest.fixture
def site_port() -> int:
    """A free port for a demo site, known before the bot that must allow its origin."""
    return free_port()


@pytest.fixture
def make_site() -> Iterator[Callable[..., DemoSite]]:
    """Factory for extra demo sites (e.g. on an origin the bot does not allow)."""
    sites: list[DemoSite] = []

    def make(rasa_url: str, port: int | None = None) -> DemoSite:
        sites.append(DemoSite(rasa_url, port=port or free_port()))
        return sites[-1]

    yield make
    for site in sites:
        site.close()


@pytest.fixture(scope="session")
def stack(make_stack: Callable[..., Stack]) -> Stack:
    """The shared bot + demo site most tests use."""
    return make_stack()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium through Playwright (no downloaded browsers).

    Per module: Playwright's sync API keeps an event loop running in this thread while it
    is open, which would break `asyncio.run()` in any test collected after these.
    """
    if not CHROMIUM.exists():
        pytest.skip("needs /usr/bin/chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@dataclass
class PageEvents:
    """What a page did that a patient would notice: dialogs (alert) and script errors."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh desktop-sized page with its own storage."""
    context = browser.new_context(viewport=DESKTOP)
    yield context.new_page()
    context.close()


@pytest.fixture
def page_events(page: Page) -> PageEvents:
    """Record dialogs (dismissing them) and uncaught errors of `page`."""
    events = PageEvents()

    def on_dialog(dialog: Dialog) -> None:
        events.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: events.errors.append(str(error)))
    return events


@pytest.fixture
def artifacts() -> Path:
    """Where screenshots go (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
