"""Counters for ``bench/login_cost_bench.py``: what the broker's requests cost, counted in this process.

- :class:`CostMeter`: WSGI middleware around the broker app. Each broker request runs in one werkzeug server
  thread; the meter marks that thread while the request runs (the body is drained inside the mark) and adds up
  the thread's CPU (``time.thread_time()``, user+system of this thread only: the upstream peers and the apps
  run in their own server threads and are not counted; time spent waiting on a back-channel call is not CPU).
  On marked threads only it counts SQLAlchemy events of every engine (class-level listeners, so the engines
  the app creates itself are included): ``before_cursor_execute`` = statements, ``begin`` / ``commit`` /
  ``rollback`` of a Connection (the pool's reset on return is counted apart, as ``resets``; psycopg sends its
  ROLLBACK only when a transaction is open), and pool ``checkout`` (whether a checkout pings the server depends
  on the engine's settings, which change: the proxy counts what is actually sent). And Redis calls
  of every redis-py client (class-level wrappers): ``Redis.execute_command`` is one command and one round
  trip; ``Pipeline.execute`` is one round trip carrying its queued commands (Flask-Session, the pending-state
  store and Flask-Limiter's ``limits`` all use redis-py). A connection's handshake (HELLO, CLIENT SETINFO) is
  not counted; pools keep their connections, so it happens once per connection, not per login.
- :class:`RoundTripProxy`: a byte-forwarding TCP proxy on 127.0.0.1 in front of PostgreSQL that counts round
  trips for real: one each time a client connection sends after the server last spoke (or first). psycopg sends
  no pipelines, so BEGIN, each statement, COMMIT or ROLLBACK and a ping are one each (checked against
  SQLAlchemy: BEGIN + SELECT + COMMIT through the proxy = 3); a new connection's set-up (start-up, auth,
  SQLAlchemy's first-connect queries) is a dozen or so. It sees every connection made to its port, on a
  request thread or not.
"""

from __future__ import annotations

import re
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

COUNTED = ("requests", "cpu", "statements", "begins", "commits", "rollbacks", "checkouts", "resets",
           "redis_trips", "redis_commands", "pg_trips")


@dataclass(frozen=True)
class Costs:
    """Totals since the meter started; subtract two to get what happened in between."""

    requests: int = 0
    cpu: float = 0.0
    statements: int = 0
    begins: int = 0
    commits: int = 0
    rollbacks: int = 0
    checkouts: int = 0
    resets: int = 0
    redis_trips: int = 0
    redis_commands: int = 0
    pg_trips: int = 0

    def __sub__(self, other: Costs) -> Costs:
        return Costs(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})

    def __add__(self, other: Costs) -> Costs:
        return Costs(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def scaled(self, factor: float) -> Costs:
        """Every figure times ``factor`` (counts become means: no longer whole numbers)."""
        return Costs(**{f.name: getattr(self, f.name) * factor for f in fields(self)})


class CostMeter:
    """Wraps the broker's WSGI app; ``snapshot()`` gives the totals so far. ``close()`` removes the listeners
    and the redis-py wrappers (restores the originals)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], proxy: RoundTripProxy | None = None) -> None:
        self.app, self.proxy = app, proxy
        self.lock = threading.Lock()
        self.local = threading.local()
        self.totals: dict[str, float] = dict.fromkeys(COUNTED, 0)
        #: ("METHOD /path", its costs) of every request, in order (long path segments, the login handles: "*")
        self.per_request: list[tuple[str, Costs]] = []
        self._listeners = [(Engine, "before_cursor_execute", "statements"), (Engine, "begin", "begins"),
                           (Engine, "commit", "commits"), (Engine, "rollback", "rollbacks"),
                           (Pool, "checkout", "checkouts"), (Pool, "reset", "resets")]
        self._handlers: list[tuple[Any, str, Callable[..., None]]] = []
        for target, name, counter in self._listeners:
            handler = self._counter(counter)
            event.listen(target, name, handler)
            self._handlers.append((target, name, handler))
        self._patch_redis()

    def _counter(self, name: str) -> Callable[..., None]:
        def count(*_: Any, **__: Any) -> None:
            self.add(name, 1)
        return count

    def add(self, name: str, amount: float) -> None:
        if getattr(self.local, "active", False):
            with self.lock:
                self.totals[name] += amount

    def _patch_redis(self) -> None:
        import redis
        import redis.client

        meter = self
        command: Any = redis.Redis.execute_command
        execute: Any = redis.client.Pipeline.execute
        self._redis_originals = (command, execute)

        def execute_command(client: Any, *args: Any, **options: Any) -> Any:
            meter.add("redis_trips", 1)
            meter.add("redis_commands", 1)
            return command(client, *args, **options)

        def pipeline_execute(pipe: Any, *args: Any, **options: Any) -> Any:
            queued = len(pipe.command_stack)
            if queued:
                meter.add("redis_trips", 1)
                meter.add("redis_commands", queued)
            return execute(pipe, *args, **options)

        setattr(redis.Redis, "execute_command", execute_command)  # noqa: B010 (a class attribute, on purpose)
        setattr(redis.client.Pipeline, "execute", pipeline_execute)  # noqa: B010

    def close(self) -> None:
        import redis
        import redis.client

        for target, name, handler in self._handlers:
            event.remove(target, name, handler)
        command, execute = self._redis_originals
        setattr(redis.Redis, "execute_command", command)  # noqa: B010
        setattr(redis.client.Pipeline, "execute", execute)  # noqa: B010

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        before = self.snapshot()
        try:
            return self._metered(environ, start_response)
        finally:  # requests of one login never overlap (the browser waits), so a difference of totals is its own
            path = re.sub(r"/[A-Za-z0-9_-]{20,}", "/*", environ.get("PATH_INFO", ""))
            self.per_request.append((f"{environ.get('REQUEST_METHOD')} {path}", self.snapshot() - before))

    def _metered(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        self.local.active = True
        started = time.thread_time()
        try:
            result = self.app(environ, start_response)
            try:
                body = list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        finally:
            self.add("cpu", time.thread_time() - started)
            self.add("requests", 1)
            self.local.active = False
        return body

    def snapshot(self) -> Costs:
        with self.lock:
            totals = dict(self.totals)
        totals["pg_trips"] = self.proxy.round_trips if self.proxy is not None else 0
        values: dict[str, Any] = {name: (float(v) if name == "cpu" else int(v)) for name, v in totals.items()}
        return Costs(**values)


class RoundTripProxy:
    """``127.0.0.1:<port>`` forwarding to ``target``; ``round_trips`` counts client flights (see the module)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.round_trips = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, name="pg-proxy", daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target, timeout=10)
            upstream.settimeout(None)
            threading.Thread(target=self._pump, args=(client, upstream), name="pg-proxy-conn", daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        server_spoke = True  # the client's first flight is a round trip too
        with selectors.DefaultSelector() as selector, client, upstream:
            selector.register(client, selectors.EVENT_READ)
            selector.register(upstream, selectors.EVENT_READ)
            while not self.stopped.is_set():
                for key, _ in selector.select(timeout=1.0):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = source.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    if source is client:
                        if server_spoke:
                            with self.lock:
                                self.round_trips += 1
                            server_spoke = False
                        upstream.sendall(data)
                    else:
                        server_spoke = True
                        client.sendall(data)

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()
