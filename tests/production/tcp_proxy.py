"""A TCP proxy on 127.0.0.1 that a test can cut: simulated PostgreSQL or Redis outages without touching the
real service (which other tests and people share).

``TcpProxy(host, port)`` listens on an OS-chosen port and pipes each connection's bytes to the target.
``close()`` resets every open connection and refuses new ones (accepted and reset at once, as a dead host's
port would); ``open()`` lets connections through again.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
from types import TracebackType

LOOPBACK = "127.0.0.1"


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the peer sees the connection die, not an orderly end."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server((LOOPBACK, 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open = True
        self._stopped = False
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        #: connections accepted while open (a test can see that clients reconnected)
        self.connections = 0
        self._thread = threading.Thread(target=self._accept_loop, name=f"tcp-proxy-{self.port}", daemon=True)
        self._thread.start()

    @property
    def is_open(self) -> bool:
        return self._open

    def close(self) -> None:
        """Drop every connection and refuse new ones until ``open``."""
        with self._lock:
            self._open = False
            pairs, self._pairs = self._pairs, set()
        for client, upstream in pairs:
            _reset(client)
            _reset(upstream)

    def open(self) -> None:
        with self._lock:
            self._open = True

    def stop(self) -> None:
        self.close()
        self._stopped = True
        self._thread.join(timeout=5)
        self._listener.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._open:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            pair = (client, upstream)
            with self._lock:
                if not self._open:
                    _reset(client)
                    _reset(upstream)
                    continue
                self._pairs.add(pair)
                self.connections += 1
            threading.Thread(target=self._pipe, args=(pair,), name=f"tcp-proxy-{self.port}-pipe",
                             daemon=True).start()

    def _pipe(self, pair: tuple[socket.socket, socket.socket]) -> None:
        client, upstream = pair
        other = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            try:
                selector.register(client, selectors.EVENT_READ)
                selector.register(upstream, selectors.EVENT_READ)
                while True:
                    for key, _ in selector.select(timeout=0.2):
                        source: socket.socket = key.fileobj  # type: ignore[assignment]
                        data = source.recv(65536)
                        if not data:
                            raise ConnectionError("closed")
                        other[source].sendall(data)
                    if pair not in self._pairs:
                        return
            except (OSError, ValueError):
                pass
            finally:
                with self._lock:
                    self._pairs.discard(pair)
                for sock in pair:
                    with contextlib.suppress(OSError):
                        sock.close()
