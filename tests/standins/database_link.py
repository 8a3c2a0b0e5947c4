"""A loopback link to a real local server (PostgreSQL, Redis) that tests can cut, stall and restore.

Faults are made for real on TCP, nothing is patched: `close()` refuses connections (the
database is down), `stall()` keeps accepting connections and reading requests but never
answers (a hung server or a black-holed network), `open()` forwards again.
"""

from __future__ import annotations

import socket
import threading
from typing import List, Optional


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class DatabaseLink:
    """Forwards a free loopback port to the server on `target_port` (PostgreSQL by default)."""

    def __init__(self, target_port: int = 5432) -> None:
        self.target_port = target_port
        self.port = _free_port()
        self.stalled = False
        self._server: Optional[socket.socket] = None
        self._conns: List[socket.socket] = []
        self._lock = threading.Lock()

    def url(self, postgres_url: str) -> str:
        """`postgres_url` (on 127.0.0.1:5432) rewritten to go through this link."""
        return postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{self.port}")

    def open(self) -> None:
        """Forward connections (again); connections made while stalled are cut."""
        self._drop_connections()
        self.stalled = False
        if self._server is None:
            server = socket.socket()
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", self.port))
            server.listen(32)
            self._server = server
            threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def stall(self) -> None:
        """Accept connections and swallow every byte, answering nothing."""
        self.stalled = True

    def close(self) -> None:
        """Refuse new connections and cut the open ones."""
        if self._server is not None:
            _shut(self._server)
            self._server = None
        self._drop_connections()

    def _drop_connections(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            _shut(conn)

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(client)
            if self.stalled:
                threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                _shut(client)
                continue
            with self._lock:
                self._conns.append(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _swallow(self, source: socket.socket) -> None:
        try:
            while source.recv(65536):
                pass
        except OSError:
            pass

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self.stalled:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            _shut(source)
            _shut(sink)


class SilentListener:
    """A port that accepts TCP connections and never sends a byte."""

    def __init__(self) -> None:
        self.port = _free_port()
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", self.port))
        self._server.listen(32)
        self._held: List[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self._held.append(client)

    def close(self) -> None:
        """Stop listening and drop the held connections."""
        _shut(self._server)
        for conn in self._held:
            _shut(conn)
