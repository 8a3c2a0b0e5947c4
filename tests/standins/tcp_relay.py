"""A TCP relay on loopback in front of a real server (PostgreSQL, Redis) that a test can cut.

`close()` refuses new connections and drops the open ones, as a stopped server would;
`open()` on the same port brings it back. The server itself keeps running for other tests.
"""

from __future__ import annotations

import socket
import threading
from typing import List, Optional

from tests.conftest import free_port


class TcpRelay:
    """Forwards a loopback port to a local server; `close()` makes it unreachable (refused)."""

    def __init__(self, target_port: int = 5432, port: Optional[int] = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self._server: Optional[socket.socket] = None
        self._conns: List[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        if self._server:
            try:
                self._server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(): refuse from now on
            except OSError:
                pass
            self._server.close()
            self._server = None
        with self._lock:
            for conn in self._conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                    conn.close()
                except OSError:
                    pass
            self._conns.clear()
