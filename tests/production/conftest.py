"""Fixtures of the production tests: real PostgreSQL and Redis (``BROKER_TEST_DATABASE_URL``,
``BROKER_TEST_REDIS_URL``; a test that needs one is skipped when its variable is unset, and fails when it is set
but the service is unreachable), reached directly or through a ``TcpProxy`` that a test can cut."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url

from tests.databases import POSTGRES_ENV, postgres_schema
from tests.flows.federation import make_keys
from tests.peers.browser import Browser
from tests.production.tcp_proxy import TcpProxy

REDIS_ENV = "BROKER_TEST_REDIS_URL"
needs_postgres = pytest.mark.skipif(not os.environ.get(POSTGRES_ENV), reason=f"needs {POSTGRES_ENV}")
needs_redis = pytest.mark.skipif(not os.environ.get(REDIS_ENV), reason=f"needs {REDIS_ENV}")


@pytest.fixture(scope="session")
def key_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def browser() -> Iterator[Browser]:
    with Browser() as b:
        yield b


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema on the test PostgreSQL (dropped afterwards)."""
    yield from postgres_schema(os.environ[POSTGRES_ENV])


@pytest.fixture
def redis_url() -> str:
    import redis

    url = os.environ[REDIS_ENV]
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"{REDIS_ENV} is set but Redis is unreachable: {exc}", pytrace=False)
    return url


def through(proxy: TcpProxy, url: str) -> str:
    """``url`` (a database or Redis URL) with its host and port replaced by the proxy's."""
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def proxy_for(url: str, default_port: int) -> TcpProxy:
    parsed = make_url(url)
    return TcpProxy(parsed.host or "127.0.0.1", parsed.port or default_port)
