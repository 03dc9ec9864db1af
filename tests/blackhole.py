"""A loopback TCP proxy that can turn into a blackhole, for the timeout tests
(tests/integration/pipeline/test_hung_connections.py).

`BlackholeProxy(port)` listens on 127.0.0.1 (a free port) and forwards every connection to 127.0.0.1:`port`.
After `blackhole()` it keeps every socket open and reads whatever arrives, but forwards nothing either
way, and new connections are accepted and never answered: what a hung proxy, a stuck load balancer or
a half-dead network path looks like to a client. Nothing is closed, so the client sees no error at
all: only its own timeouts can end its wait. (The kernel still acknowledges every packet, so TCP
keepalives are answered too: only an application-level timeout catches this.)
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class BlackholeProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def blackhole(self) -> None:
        """From now on forward nothing, in either direction, on old and new connections alike."""
        self._forwarding.clear()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._track(client)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # relay small messages at once
            if not self._forwarding.is_set():
                threading.Thread(target=self._pump, args=(client, None), daemon=True).start()
                continue
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            self._track(server)
            server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket | None) -> None:
        """Copy `source` to `sink` while forwarding; afterwards read and drop (never close: a blackhole)."""
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                if sink is not None and self._forwarding.is_set():
                    with contextlib.suppress(OSError):
                        sink.shutdown(socket.SHUT_WR)
                return
            if sink is not None and self._forwarding.is_set():
                try:
                    sink.sendall(data)
                except OSError:
                    return

    def close(self) -> None:
        """Close every socket, both ends' connections included: the server ends their sessions."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # a close alone waits for the pump blocked in recv
                sock.close()

    def __enter__(self) -> BlackholeProxy:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
