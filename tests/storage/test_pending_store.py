"""``SqlPendingStore``: unguessable, expiring, single-use handles."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, event

from broker.core.pending_kinds import Kind
from broker.core.ports import HandleInUse, PendingStore
from broker.storage import SqlPendingStore
from broker.storage.sealing import Sealer

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=10)
SEALER = Sealer([bytes(range(32))])


def test_put_peek_take(engine: Engine) -> None:
    store: PendingStore = SqlPendingStore(engine, SEALER)
    handle = store.put(Kind.LOGIN, '{"x": 1}', LATER)
    assert len(handle) >= 43
    assert store.peek(Kind.LOGIN, handle, NOW) == '{"x": 1}'
    assert store.peek(Kind.LOGIN, handle, NOW) == '{"x": 1}'
    assert store.take(Kind.LOGIN, handle, NOW) == '{"x": 1}'
    assert store.take(Kind.LOGIN, handle, NOW) is None
    assert store.peek(Kind.LOGIN, handle, NOW) is None


def test_handles_are_distinct(engine: Engine) -> None:
    store = SqlPendingStore(engine, SEALER)
    assert len({store.put(Kind.LOGIN, "p", LATER) for _ in range(50)}) == 50


def test_put_with_handle(engine: Engine) -> None:
    store = SqlPendingStore(engine, SEALER)
    store.put_with_handle(Kind.OIDC_UPSTREAM, "state-123", "payload", LATER)
    assert store.take(Kind.OIDC_UPSTREAM, "state-123", NOW) == "payload"
    store.put_with_handle(Kind.OIDC_UPSTREAM, "state-456", "payload", LATER)
    with pytest.raises(HandleInUse):
        store.put_with_handle(Kind.OIDC_UPSTREAM, "state-456", "another", LATER)


def test_expired_state_is_not_returned(engine: Engine) -> None:
    store = SqlPendingStore(engine, SEALER)
    handle = store.put(Kind.LOGIN, "p", LATER)
    assert store.peek(Kind.LOGIN, handle, LATER) is None
    assert store.take(Kind.LOGIN, handle, LATER + timedelta(seconds=1)) is None
    assert store.take(Kind.LOGIN, handle, LATER - timedelta(seconds=1)) == "p"


def test_wrong_kind_is_not_returned_and_not_consumed(engine: Engine) -> None:
    store = SqlPendingStore(engine, SEALER)
    handle = store.put(Kind.LOGIN, "p", LATER)
    assert store.peek(Kind.OIDC_UPSTREAM, handle, NOW) is None
    assert store.take(Kind.OIDC_UPSTREAM, handle, NOW) is None
    assert store.take(Kind.LOGIN, handle, NOW) == "p"


def test_twenty_simultaneous_takes_only_one_wins(engine: Engine) -> None:
    store = SqlPendingStore(engine, SEALER)
    handle = store.put(Kind.LOGIN, "the-payload", LATER)
    start = threading.Barrier(20)

    def take() -> str | None:
        start.wait()
        return store.take(Kind.LOGIN, handle, NOW)

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = [f.result(timeout=60) for f in [pool.submit(take) for _ in range(20)]]
    assert results.count("the-payload") == 1
    assert results.count(None) == 19


def test_purge_expired(engine: Engine) -> None:
    store = SqlPendingStore(engine, SEALER)
    old = [store.put(Kind.LOGIN, "old", NOW - timedelta(seconds=s)) for s in (1, 60)]
    fresh = store.put(Kind.LOGIN, "fresh", LATER)
    assert store.purge_expired(NOW) == 2
    assert store.purge_expired(NOW) == 0
    assert all(store.take(Kind.LOGIN, h, NOW - timedelta(hours=1)) is None for h in old)
    assert store.peek(Kind.LOGIN, fresh, NOW) == "fresh"


def test_peek_many_is_one_select_of_the_live_kinds_asked_for(engine: Engine) -> None:
    """The error page's way back (``broker.journeys.way_back.waiting``) asks for every kind a login may wait in
    at once: one statement, expired and other kinds left out, nothing taken."""
    now = datetime.now(UTC)
    store = SqlPendingStore(engine, SEALER)
    waiting = store.put(Kind.CONSENT, "at consent", now + timedelta(minutes=5))
    expired = store.put(Kind.LOGIN, "at discovery", now - timedelta(seconds=1))
    kinds = [Kind.LOGIN, Kind.CONSENT, Kind.OIDC_UPSTREAM]
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        answers = [store.peek_many(kinds, waiting, now), store.peek_many(kinds, expired, now),
                   store.peek_many([Kind.LOGIN, Kind.OIDC_UPSTREAM], waiting, now), store.peek_many([], waiting, now)]
    finally:
        event.remove(engine, "before_cursor_execute", seen)

    assert answers == [{Kind.CONSENT: "at consent"}, {}, {}, {}]
    assert [s.split()[0] for s in statements] == ["SELECT"] * 3, statements
    assert store.take(Kind.CONSENT, waiting, now) == "at consent"  # a look, not a take
