"""Fixtures of the flow tests: one whole federation per test (see ``federation.py``), on SQLite and, when
``BROKER_TEST_DATABASE_URL`` is set, on PostgreSQL; keys generated once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import BACKENDS, database_for
from tests.flows.federation import Federation, make_keys, running_federation
from tests.peers.browser import Browser


@pytest.fixture(scope="session")
def key_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(params=BACKENDS)
def federation(request: pytest.FixtureRequest, tmp_path: Path, key_folder: Path) -> Iterator[Federation]:
    database = database_for(request.param, tmp_path)
    try:
        with running_federation(tmp_path / "instance", key_folder, next(database)) as running:
            yield running
    finally:
        for _ in database:  # drops the PostgreSQL schema
            pass


@pytest.fixture
def browser() -> Iterator[Browser]:
    with Browser() as b:
        yield b
