"""``SqlClientStore``: dynamically registered clients, one row per client id."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from broker.core.grants import token_hash
from broker.core.ports import ClientStore, StoredClient
from broker.storage import SqlClientStore

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def client(client_id: str = "dyn-1", created_at: datetime = NOW, **metadata: object) -> StoredClient:
    text = json.dumps({"client_id": client_id, "redirect_uris": ["https://app.example.org/cb"], **metadata})
    return StoredClient(client_id=client_id, metadata=text, registration_token_hash=token_hash("rat-" + client_id),
                        created_at=created_at, updated_at=created_at)


def test_add_get(engine: Engine) -> None:
    store: ClientStore = SqlClientStore(engine)
    registered = client(client_name="City app")
    store.add(registered)
    found = store.get("dyn-1")
    assert found == registered
    assert found is not None and found.created_at.tzinfo is UTC
    assert store.get("dyn-2") is None


def test_duplicate_client_id_is_refused(engine: Engine) -> None:
    store = SqlClientStore(engine)
    first = client(client_name="first")
    store.add(first)
    with pytest.raises(ValueError, match="dyn-1"):
        store.add(client(client_name="second", created_at=NOW + timedelta(minutes=1)))
    assert store.get("dyn-1") == first


def test_replace(engine: Engine) -> None:
    store = SqlClientStore(engine)
    registered = client()
    store.add(registered)
    later = NOW + timedelta(days=1)
    new_metadata = json.dumps({"client_id": "dyn-1", "redirect_uris": ["https://app.example.org/new"]})
    assert store.replace("dyn-1", new_metadata, later)
    found = store.get("dyn-1")
    assert found is not None
    assert (found.metadata, found.updated_at, found.created_at) == (new_metadata, later, NOW)
    assert found.registration_token_hash == registered.registration_token_hash
    assert not store.replace("dyn-2", new_metadata, later)
    assert store.get("dyn-2") is None


def test_remove(engine: Engine) -> None:
    store = SqlClientStore(engine)
    store.add(client("dyn-1"))
    store.add(client("dyn-2"))
    assert store.remove("dyn-1")
    assert store.get("dyn-1") is None
    assert not store.remove("dyn-1")
    assert store.get("dyn-2") is not None


def test_all_oldest_first(engine: Engine) -> None:
    store = SqlClientStore(engine)
    assert store.all() == []
    clients = [client("b", NOW), client("c", NOW + timedelta(hours=1)), client("a", NOW + timedelta(hours=2))]
    for registered in reversed(clients):
        store.add(registered)
    assert list(store.all()) == clients
