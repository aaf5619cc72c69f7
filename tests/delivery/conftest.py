"""Databases (``tests/databases.py``: SQLite, and PostgreSQL when configured) and a receiver on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from broker.storage import create_engine_for, upgrade
from tests.databases import BACKENDS, database_for
from tests.delivery.receiver_support import Receiver


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database."""
    for url in database_for(request.param, tmp_path):
        upgrade(url)
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine_for(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().start() as running:
        yield running
