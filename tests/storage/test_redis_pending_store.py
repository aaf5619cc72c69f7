"""``RedisPendingStore``: the same contract as the SQL store (single use, kinds kept apart, expiry by the
broker's clock, a taken handle refused), on the machine's real Redis (``BROKER_TEST_REDIS_URL``)."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from broker.core.pending_kinds import Kind
from broker.core.ports import HandleInUse, PendingStore
from broker.storage.redis_pending import RedisPendingStore
from broker.storage.sealing import Sealer
from tests.web.redis_counting import counting_redis

REDIS_ENV = "BROKER_TEST_REDIS_URL"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)  # the broker's clock may be far from Redis's: expiry follows it
LATER = NOW + timedelta(minutes=10)
pytestmark = pytest.mark.skipif(not os.environ.get(REDIS_ENV), reason=f"{REDIS_ENV} not set")


@pytest.fixture
def store() -> Iterator[PendingStore]:
    import redis

    client = redis.Redis.from_url(os.environ[REDIS_ENV])
    prefix = f"test-{secrets.token_hex(6)}:"
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"{REDIS_ENV} is set but Redis is unreachable: {exc}", pytrace=False)
    yield RedisPendingStore(client, prefix, Sealer([bytes(range(32))]))
    for key in client.scan_iter(prefix + "*"):
        client.delete(key)
    client.close()


def test_put_peek_take_once(store: PendingStore) -> None:
    handle = store.put(Kind.LOGIN, '{"x": 1}', LATER)
    assert store.peek(Kind.LOGIN, handle, NOW) == '{"x": 1}'
    assert store.take(Kind.LOGIN, handle, NOW) == '{"x": 1}'
    assert store.take(Kind.LOGIN, handle, NOW) is None and store.peek(Kind.LOGIN, handle, NOW) is None


def test_a_taken_handle_is_refused_and_kept(store: PendingStore) -> None:
    store.put_with_handle(Kind.SAML_ASSERTION, "id-1", "first", LATER)
    with pytest.raises(HandleInUse):
        store.put_with_handle(Kind.SAML_ASSERTION, "id-1", "second", LATER)
    assert store.take(Kind.SAML_ASSERTION, "id-1", NOW) == "first"


def test_kinds_are_kept_apart(store: PendingStore) -> None:
    handle = store.put(Kind.LOGIN, "p", LATER)
    assert store.peek(Kind.OIDC_UPSTREAM, handle, NOW) is None
    assert store.take(Kind.OIDC_UPSTREAM, handle, NOW) is None
    assert store.take(Kind.LOGIN, handle, NOW) == "p"


def test_expiry_follows_the_brokers_clock(store: PendingStore) -> None:
    handle = store.put(Kind.LOGIN, "p", LATER)
    assert store.peek(Kind.LOGIN, handle, LATER) is None
    assert store.take(Kind.LOGIN, handle, LATER + timedelta(seconds=1)) is None


def test_twenty_simultaneous_takes_only_one_wins(store: PendingStore) -> None:
    handle = store.put(Kind.LOGIN, "the-payload", LATER)
    start = threading.Barrier(20)

    def take() -> str | None:
        start.wait()
        return store.take(Kind.LOGIN, handle, NOW)

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = [f.result(timeout=60) for f in [pool.submit(take) for _ in range(20)]]
    assert results.count("the-payload") == 1 and results.count(None) == 19


def test_peek_many_is_one_mget_of_the_live_kinds_asked_for(store: PendingStore,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The error page's way back asks for every kind a login may wait in at once: one round trip (``MGET``),
    expired and other kinds left out, nothing taken."""
    now = datetime.now(UTC)  # the broker's clock; Redis keeps keys a little longer (``KEEP_EXTRA``)
    waiting = store.put(Kind.CONSENT, "at consent", now + timedelta(minutes=5))
    expired = store.put(Kind.LOGIN, "at discovery", now - timedelta(seconds=1))
    kinds = [Kind.LOGIN, Kind.CONSENT, Kind.OIDC_UPSTREAM]

    with counting_redis(monkeypatch) as calls:
        answers = [store.peek_many(kinds, waiting, now), store.peek_many(kinds, expired, now),
                   store.peek_many([Kind.LOGIN, Kind.OIDC_UPSTREAM], waiting, now)]

    assert answers == [{Kind.CONSENT: "at consent"}, {}, {}]
    assert [t.commands for t in calls.trips] == [("MGET",)] * 3
    assert store.take(Kind.CONSENT, waiting, now) == "at consent"  # a look, not a take
