"""A real aiohttp server on 127.0.0.1 running in its own thread and event loop.

Stand-ins must answer over real HTTP while the code under test runs in another loop (Sanic's),
exactly as Telegram's and Meta's servers would; a thread with its own loop gives that, and
tests stay plain synchronous functions that can also use blocking clients.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], T], timeout: float = 5.0, interval: float = 0.02) -> T:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


class ThreadedAiohttpServer:
    """Serve an aiohttp application on 127.0.0.1 from a background thread."""

    def __init__(self, port: int = 0) -> None:
        """Prepare the server; `port=0` picks a free one on `start`."""
        self.port = port or free_port()
        self.lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None

    @property
    def base_url(self) -> str:
        """URL of the server, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def build_app(self) -> web.Application:
        """Routes of the stand-in; subclasses override this."""
        raise NotImplementedError

    def start(self) -> None:
        """Start serving; returns once the port accepts connections."""
        self._thread = threading.Thread(target=self._serve, name=type(self).__name__, daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError(f"{type(self).__name__} did not start")
        if self._start_error is not None:
            raise RuntimeError(f"{type(self).__name__} failed to start") from self._start_error

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._runner = web.AppRunner(self.build_app(), access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            loop.run_until_complete(site.start())
        except BaseException as error:  # noqa: BLE001 - reported to the starting thread
            self._start_error = error
            self._started.set()
            loop.close()
            return
        self._started.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None
