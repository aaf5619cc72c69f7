"""Pending login state at rest (issue 15, point 2): both stores keep the handle as a hash and the payload
sealed, so a copy of the database or of Redis shows neither the name and e-mail address of a link offer nor a
handle that finishes the login; a value changed, or moved to another handle or kind, is not returned."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update

from broker.core.pending_kinds import Kind
from broker.core.ports import PendingStore
from broker.storage import SqlPendingStore
from broker.storage.pending_seal import handle_digest
from broker.storage.redis_pending import RedisPendingStore
from broker.storage.sealing import Sealer
from broker.storage.tables import PendingStateRow

REDIS_ENV = "BROKER_TEST_REDIS_URL"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=10)
SEALER = Sealer([bytes(range(32))])
OFFER = json.dumps({"claims": {"name": "Anna Tester", "email": "anna.tester@example.org"}})
SECRETS_OF_THE_OFFER = ("Anna Tester", "anna.tester@example.org", "Anna", "tester@")


# -- SQL ---------------------------------------------------------------------------------------------------------

def _rows(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as connection:
        found = connection.execute(select(PendingStateRow.handle, PendingStateRow.kind, PendingStateRow.payload))
        return [(str(h), str(k), str(p)) for h, k, p in found]


def test_the_sql_row_holds_neither_the_payload_nor_the_handle(engine: Engine) -> None:
    store = SqlPendingStore(engine, SEALER)
    handle = store.put(Kind.LINK_OFFER, OFFER, LATER)

    [(stored_handle, kind, payload)] = _rows(engine)
    assert kind == "link-offer"
    assert stored_handle == handle_digest(handle) and handle not in stored_handle
    assert all(secret not in payload for secret in SECRETS_OF_THE_OFFER) and handle not in payload
    assert store.peek(Kind.LINK_OFFER, stored_handle, NOW) is None  # the stored hash is no handle
    assert store.take(Kind.LINK_OFFER, handle, NOW) == OFFER


def test_a_changed_sql_payload_is_not_returned(engine: Engine) -> None:
    store = SqlPendingStore(engine, SEALER)
    handle = store.put(Kind.LINK_OFFER, OFFER, LATER)
    [(_, _, payload)] = _rows(engine)
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    with engine.begin() as connection:
        connection.execute(update(PendingStateRow).values(payload=flipped))

    assert store.peek(Kind.LINK_OFFER, handle, NOW) is None
    assert store.take(Kind.LINK_OFFER, handle, NOW) is None


def test_a_plain_sql_payload_is_not_returned(engine: Engine) -> None:
    """Someone who can write the table cannot plant a login state of their own in clear."""
    store = SqlPendingStore(engine, SEALER)
    handle = secrets.token_urlsafe(32)
    with engine.begin() as connection:
        connection.execute(insert(PendingStateRow).values(
            handle=handle_digest(handle), kind="login", payload='{"downstream": "x"}', expires_at=LATER))

    assert store.take(Kind.LOGIN, handle, NOW) is None


def test_a_sql_payload_moved_to_another_handle_or_kind_is_not_returned(engine: Engine) -> None:
    store = SqlPendingStore(engine, SEALER)
    victim = store.put(Kind.LINK_OFFER, OFFER, LATER)
    attacker = store.put(Kind.LINK_OFFER, "{}", LATER)
    victims_payload = next(p for h, _, p in _rows(engine) if h == handle_digest(victim))
    with engine.begin() as connection:
        connection.execute(update(PendingStateRow).where(PendingStateRow.handle == handle_digest(attacker))
                           .values(payload=victims_payload))
        connection.execute(update(PendingStateRow).where(PendingStateRow.handle == handle_digest(victim))
                           .values(kind="login"))

    assert store.take(Kind.LINK_OFFER, attacker, NOW) is None  # moved to another handle
    assert store.take(Kind.LOGIN, victim, NOW) is None  # relabelled as another kind


# -- Redis -------------------------------------------------------------------------------------------------------

@pytest.fixture
def redis_store() -> Iterator[tuple[PendingStore, Any, str]]:
    if not os.environ.get(REDIS_ENV):
        pytest.skip(f"{REDIS_ENV} not set")
    import redis

    client = redis.Redis.from_url(os.environ[REDIS_ENV])
    prefix = f"test-{secrets.token_hex(6)}:"
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"{REDIS_ENV} is set but Redis is unreachable: {exc}", pytrace=False)
    yield RedisPendingStore(client, prefix, SEALER), client, prefix
    for key in client.scan_iter(prefix + "*"):
        client.delete(key)
    client.close()


def test_the_redis_entry_holds_neither_the_payload_nor_the_handle(
        redis_store: tuple[PendingStore, Any, str]) -> None:
    store, client, prefix = redis_store
    handle = store.put(Kind.LINK_OFFER, OFFER, LATER)

    [key] = list(client.scan_iter(prefix + "*"))
    value = client.get(key).decode()
    assert key.decode() == f"{prefix}pending:link-offer:{handle_digest(handle)}"
    assert all(secret not in value for secret in SECRETS_OF_THE_OFFER) and handle not in value
    assert store.take(Kind.LINK_OFFER, handle, NOW) == OFFER


def test_a_changed_or_moved_redis_value_is_not_returned(redis_store: tuple[PendingStore, Any, str]) -> None:
    store, client, prefix = redis_store
    victim = store.put(Kind.LINK_OFFER, OFFER, LATER)
    attacker = store.put(Kind.LINK_OFFER, "{}", LATER)
    victim_key = f"{prefix}pending:link-offer:{handle_digest(victim)}"
    attacker_key = f"{prefix}pending:link-offer:{handle_digest(attacker)}"
    client.set(attacker_key, client.get(victim_key))
    expires, _, sealed = client.get(victim_key).decode().partition("\n")
    client.set(victim_key, expires + "\n" + sealed[:-1] + ("A" if sealed[-1] != "A" else "B"))

    assert store.take(Kind.LINK_OFFER, attacker, NOW) is None  # moved to another handle
    assert store.take(Kind.LINK_OFFER, victim, NOW) is None  # changed
    client.set(victim_key, expires + '\n{"downstream": "x"}')
    assert store.take(Kind.LINK_OFFER, victim, NOW) is None  # planted in clear
    client.set(victim_key, b"\xff\xfe not text")
    assert store.take(Kind.LINK_OFFER, victim, NOW) is None  # garbage
