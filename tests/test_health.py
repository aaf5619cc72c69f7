"""Liveness (/healthz) and readiness (/readyz) of a plain instance (``broker init`` + ``create_app``)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from broker.app import close_app, create_app
from broker.config.settings import load_settings
from broker.instance import InstanceOptions, init_instance
from broker.registry.metadata_refresh import SourceStatus
from broker.storage import create_engine_for, upgrade
from broker.web.ops.health import redis_urls


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released: a connect to it is refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("health") / "instance"
    config = init_instance(InstanceOptions(folder))
    upgrade(load_settings(config, environ={}).database_url)
    return config


def _app(config: Path, extra: str = "") -> Flask:
    if extra:
        config.write_text(config.read_text() + extra)
    return create_app(load_settings(config, environ={}))


@pytest.fixture
def app(instance: Path) -> Iterator[Flask]:
    app = _app(instance)
    yield app
    close_app(app)


def test_liveness_answers_without_touching_anything(app: Flask) -> None:
    answer = app.test_client().get("/healthz")
    assert answer.status_code == 200 and answer.json == {"status": "ok"}


def test_healthy_instance_is_ready(app: Flask) -> None:
    answer = app.test_client().get("/readyz")
    assert answer.status_code == 200, answer.json
    assert answer.json == {"status": "ready", "checks": {"database": "ok", "idp_metadata": "ok"}}
    assert answer.headers["Cache-Control"] == "no-store"


def test_unreachable_database_is_not_ready_and_named(app: Flask) -> None:
    port = _closed_port()
    services = app.extensions["broker"]
    healthy = services.engine
    services.engine = create_engine_for(f"postgresql+psycopg://broker:s3cret@127.0.0.1:{port}/broker?connect_timeout=1")
    try:
        answer = app.test_client().get("/readyz")
    finally:
        services.engine.dispose()
        services.engine = healthy
    assert answer.status_code == 503
    assert answer.json == {"status": "not ready", "checks": {"database": "unavailable", "idp_metadata": "ok"}}
    body = answer.get_data(as_text=True)
    assert str(port) not in body and "s3cret" not in body and "Traceback" not in body
    # and it recovers once the database answers again
    assert app.test_client().get("/readyz").status_code == 200


class _Directory:
    def __init__(self, *statuses: SourceStatus) -> None:
        self.statuses = statuses

    def status(self) -> tuple[SourceStatus, ...]:
        return self.statuses

    def close(self) -> None:
        pass


def _source(name: str, *, loaded: bool, expired: bool) -> SourceStatus:
    now = datetime.now(UTC)
    return SourceStatus(name=name, kind="url", location=f"https://fed.example/{name}.xml?token=x", entities=0,
                        generation=1 if loaded else 0, loaded_at=now if loaded else None, valid_until=None,
                        next_refresh=None, last_error="HTTP 500 from https://fed.example" if not loaded else None,
                        expired=expired)


def test_expired_or_never_loaded_idp_metadata_is_not_ready(app: Flask) -> None:
    services: Any = app.extensions["broker"]
    real = services.idp_directory
    services.idp_directory = _Directory(_source("good", loaded=True, expired=False),
                                        _source("edugain", loaded=True, expired=True),
                                        _source("city", loaded=False, expired=False))
    try:
        answer = app.test_client().get("/readyz")
    finally:
        services.idp_directory = real
    assert answer.status_code == 503
    body = answer.json
    assert body is not None
    assert body["checks"] == {"database": "ok", "idp_metadata": "expired: edugain; not loaded: city"}
    assert "fed.example" not in answer.get_data(as_text=True)  # no locations or error text


def test_redis_is_checked_only_when_configured(instance: Path) -> None:
    settings = load_settings(instance, environ={})
    assert redis_urls(settings) == {}
    port = _closed_port()
    settings = load_settings(instance, environ={"BROKER_SESSION_TYPE": "redis",
                                                "BROKER_REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    # the rate limits follow the sessions into the same Redis: one check
    assert redis_urls(settings) == {"redis": f"redis://127.0.0.1:{port}/0"}


def test_unreachable_redis_for_rate_limits_is_not_ready(tmp_path: Path) -> None:
    config = init_instance(InstanceOptions(tmp_path / "instance"))
    upgrade(load_settings(config, environ={}).database_url)
    app = _app(config, f'\n[limits]\nstorage_url = "redis://127.0.0.1:{_closed_port()}/0"\n')
    try:
        answer = app.test_client().get("/readyz")
    finally:
        close_app(app)
    assert answer.status_code == 503
    body = answer.json
    assert body is not None
    assert body["checks"] == {"database": "ok", "redis_limits": "unavailable", "idp_metadata": "ok"}


@pytest.mark.skipif(not os.environ.get("BROKER_TEST_REDIS_URL"), reason="needs BROKER_TEST_REDIS_URL")
def test_sessions_in_a_live_redis_are_ready(tmp_path: Path) -> None:
    config = init_instance(InstanceOptions(tmp_path / "instance"))
    upgrade(load_settings(config, environ={}).database_url)
    url = os.environ["BROKER_TEST_REDIS_URL"]
    app = create_app(load_settings(config, environ={"BROKER_SESSION_TYPE": "redis", "BROKER_REDIS_URL": url}))
    try:
        answer = app.test_client().get("/readyz")
    finally:
        close_app(app)
    assert answer.status_code == 200
    body = answer.json
    assert body is not None
    assert body["checks"] == {"database": "ok", "redis": "ok", "idp_metadata": "ok"}
