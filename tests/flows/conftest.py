"""Fixtures of the flow tests: one whole federation per test (see ``federation.py``), on SQLite and, when
``BROKER_TEST_DATABASE_URL`` is set, on PostgreSQL; keys generated once per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import BACKENDS, database_for
from tests.flows.admin_api_support import AdminWorld, admin_world
from tests.flows.federation import Federation, make_keys, running_federation
from tests.peers.browser import Browser


@pytest.fixture(scope="session")
def key_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_keys(tmp_path_factory.mktemp("keys"))


REDIS_ENV = "BROKER_TEST_REDIS_URL"
#: storage of accounts and pending state, plus where browser sessions live
SETUPS = [*BACKENDS, *(["postgresql+redis"] if os.environ.get(REDIS_ENV) and "postgresql" in BACKENDS else []),
          *(["sqlite+redis"] if os.environ.get(REDIS_ENV) and "postgresql" not in BACKENDS else [])]


@pytest.fixture(params=SETUPS)
def federation(request: pytest.FixtureRequest, tmp_path: Path, key_folder: Path) -> Iterator[Federation]:
    backend, _, sessions = request.param.partition("+")
    redis_url = os.environ[REDIS_ENV] if sessions == "redis" else None
    if redis_url:
        _require_redis(redis_url)
    database = database_for(backend, tmp_path)
    try:
        with running_federation(tmp_path / "instance", key_folder, next(database), redis_url) as running:
            yield running
    finally:
        for _ in database:  # drops the PostgreSQL schema
            pass


def _require_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url).ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"{REDIS_ENV} is set but Redis is unreachable: {exc}", pytrace=False)


@pytest.fixture
def browser() -> Iterator[Browser]:
    with Browser() as b:
        yield b


@pytest.fixture(params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path: Path, key_folder: Path) -> Iterator[AdminWorld]:
    """The federation of the admin API and console tests (``admin_api_support.admin_world``), on each backend."""
    database = database_for(request.param, tmp_path)
    try:
        with admin_world(tmp_path, key_folder, next(database)) as running:
            yield running
    finally:
        for _ in database:  # drops the PostgreSQL schema
            pass
