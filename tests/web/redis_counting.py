"""Counting what the broker asks Redis during requests (issue 21): every round trip and every command, each
tagged with the endpoint of the request that issued it.

``redis.Redis.execute_command`` is one round trip with one command; ``Pipeline.execute`` is one round trip
with all the commands it queued (a pipeline's own ``execute_command`` only queues, so it is not counted). Both
are replaced on the classes, so the clients of the session store, the pending store and the rate limiter
(``limits`` makes its own) are all seen, whichever server thread serves the request.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
import redis.client
from flask import has_request_context, request


@dataclass(frozen=True)
class RoundTrip:
    endpoint: str  # the Flask endpoint of the request that issued it ("None" before routing, "-" outside one)
    commands: tuple[str, ...]  # upper-case command names, in order
    keys: tuple[str, ...]  # the first key of each command ("" when it has none)

    def of_kind(self, kind: str) -> bool:
        return any(key_kind(key) == kind for key in self.keys)


@dataclass
class RedisCalls:
    """Everything sent to Redis while counting."""

    trips: list[RoundTrip] = field(default_factory=list)

    def of(self, endpoint: str) -> list[RoundTrip]:
        return [t for t in self.trips if t.endpoint == endpoint]

    def of_kind(self, kind: str) -> list[RoundTrip]:
        """The round trips that touch keys of ``kind`` (``key_kind``)."""
        return [t for t in self.trips if t.of_kind(kind)]

    def commands(self, endpoint: str | None = None) -> Counter[str]:
        return Counter(c for t in self.trips if endpoint is None or t.endpoint == endpoint for c in t.commands)

    def clear(self) -> None:
        self.trips.clear()

    def summary(self) -> str:
        """One line per endpoint: round trips, commands, and which."""
        lines = []
        for endpoint in dict.fromkeys(t.endpoint for t in self.trips):
            trips = self.of(endpoint)
            lines.append(f"{endpoint}: {len(trips)} trips, {sum(len(t.commands) for t in trips)} commands "
                         f"{dict(self.commands(endpoint))}")
        return "\n".join(lines)


#: a browser session's key: ``broker:`` and the keyed hash of its id (``broker.web.http.session_ids``)
SESSION_KEY = re.compile(r"broker:[0-9a-f]{64}")


def key_kind(key: str) -> str:
    """"session", "limits" (the ``limits`` library's keys) or "other" (logins in progress, replay caches)."""
    if SESSION_KEY.fullmatch(key):
        return "session"
    return "limits" if key.startswith("LIMITS") else "other"


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _first_key(args: tuple[Any, ...]) -> str:
    if _text(args[0]).upper() in ("EVALSHA", "EVAL"):  # EVALSHA sha numkeys key...
        return _text(args[3]) if len(args) > 3 and int(args[2]) > 0 else ""
    return _text(args[1]) if len(args) > 1 else ""


def _endpoint() -> str:
    return str(request.endpoint) if has_request_context() else "-"


@contextmanager
def counting_redis(monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisCalls]:
    """Count every Redis round trip in this process until the block ends."""
    calls = RedisCalls()
    execute_command: Any = redis.Redis.execute_command
    execute: Any = redis.client.Pipeline.execute

    def one_command(self: redis.Redis, *args: Any, **options: Any) -> Any:
        calls.trips.append(RoundTrip(_endpoint(), (_text(args[0]).upper(),), (_first_key(args),)))
        return execute_command(self, *args, **options)

    def pipelined(self: redis.client.Pipeline, raise_on_error: bool = True) -> list[Any]:
        queued = [args for args, _ in self.command_stack]
        if queued:
            calls.trips.append(RoundTrip(_endpoint(), tuple(_text(a[0]).upper() for a in queued),
                                         tuple(_first_key(a) for a in queued)))
        answers: list[Any] = execute(self, raise_on_error)
        return answers

    with monkeypatch.context() as patch:
        patch.setattr(redis.Redis, "execute_command", one_command)
        patch.setattr(redis.client.Pipeline, "execute", pipelined)
        yield calls


def forget_counters(redis_url: str, base_url: str) -> None:
    """Delete the rate-limit counters an earlier broker on the same address (a port used again) left in Redis:
    only this broker's keys (``broker.app``: prefix ``broker:<base_url>``), so tests running beside it on the same
    logical database keep theirs (no FLUSHDB)."""
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"LIMITS:*broker:{base_url}/*", count=1000):
            client.delete(key)
    finally:
        client.close()
