"""A real aiohttp server on 127.0.0.1 running in its own thread and event loop.

Stand-ins must answer over real HTTP while the code under test runs in another loop (Sanic's),
exactly as Telegram's and Meta's servers would; a thread with its own loop gives that, and
tests stay plain synchronous functions that can also use blocking clients.

Every stand-in can also misbehave the way a provider (or the proxy in front of it) does:
`fail_next` answers the next requests with an error status (a 502 page, a 503 with
`Retry-After`, a 429), `drop_next` closes the connection without answering; `faults_served`
counts them, so tests can tell how often the client tried.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

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


@dataclass(frozen=True)
class Fault:
    """One request answered badly: an error status, or (status None) a dropped connection."""

    status: int | None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


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
        self._faults: deque[Fault] = deque()
        self._faults_served = 0

    @property
    def base_url(self) -> str:
        """URL of the server, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def build_app(self) -> web.Application:
        """Routes of the stand-in; subclasses override this."""
        raise NotImplementedError

    # -- misbehaving on purpose ----------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        status: int = 502,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next `count` requests with `status` (a proxy's HTML page unless `body`)."""
        with self.lock:
            self._faults.extend(Fault(status, body, dict(headers or {})) for _ in range(count))

    def drop_next(self, count: int = 1) -> None:
        """Close the connection of the next `count` requests without answering."""
        with self.lock:
            self._faults.extend(Fault(None) for _ in range(count))

    @property
    def faults_served(self) -> int:
        """Requests answered by `fail_next` or dropped by `drop_next` so far."""
        with self.lock:
            return self._faults_served

    @web.middleware
    async def _misbehave(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        with self.lock:
            fault = self._faults.popleft() if self._faults else None
            if fault is not None:
                self._faults_served += 1
        if fault is None:
            return await handler(request)
        await request.read()
        if fault.status is None:
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError  # aiohttp ends the request without writing anything
        if fault.body is None:
            text = f"<html><body><h1>{fault.status} Server Error</h1></body></html>"
            return web.Response(status=fault.status, text=text, content_type="text/html", headers=fault.headers)
        return web.Response(
            status=fault.status,
            text=json.dumps(fault.body),
            content_type="application/json",
            headers=fault.headers,
        )

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
            app = self.build_app()
            app.middlewares.insert(0, self._misbehave)
            self._runner = web.AppRunner(app, access_log=None)
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
