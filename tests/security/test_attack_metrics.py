"""``/metrics`` is not open by default (issue 15, item 8): ``broker init`` writes a token that it then requires,
and without one it answers only this host's own, unproxied requests (``broker.web.ops.metrics``)."""

from __future__ import annotations

import dataclasses
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from broker.app import close_app, create_app
from broker.config.settings import load_settings
from broker.instance import InstanceOptions, init_instance


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_instance(InstanceOptions(tmp_path_factory.mktemp("metrics-instance")))


def _app(config: Path, *, token: bool) -> Iterator[Flask]:
    settings = load_settings(config, {})
    app = create_app(settings if token else dataclasses.replace(settings, metrics_token=b""))
    try:
        yield app
    finally:
        close_app(app)


@pytest.fixture
def tokenless(instance: Path) -> Iterator[Flask]:
    yield from _app(instance, token=False)


def test_broker_init_writes_a_metrics_token_and_requires_it(instance: Path) -> None:
    token_file = instance.parent / "certs" / "metrics.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert 'metrics_token_file = "certs/metrics.token"' in instance.read_text()
    token = token_file.read_text().strip()
    assert len(token) >= 32
    for app in _app(instance, token=True):
        client = app.test_client()
        assert client.get("/metrics").status_code == 401  # even from loopback: the token is configured
        assert client.get("/metrics", headers={"Authorization": "Bearer " + token}).status_code == 200


@pytest.mark.parametrize("address", ["203.0.113.7", "10.0.0.8", "::ffff:203.0.113.7", "2001:db8::1", "not-an-ip"])
def test_without_a_token_a_client_elsewhere_is_refused(tokenless: Flask, address: str) -> None:
    answer = tokenless.test_client().get("/metrics", environ_base={"REMOTE_ADDR": address})
    assert answer.status_code == 403
    assert "broker_http_requests" not in answer.text


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
def test_without_a_token_a_request_a_local_proxy_relayed_is_refused(tokenless: Flask, header: str) -> None:
    value = "for=203.0.113.7" if header == "Forwarded" else "203.0.113.7"
    answer = tokenless.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"},
                                         headers={header: value})
    assert answer.status_code == 403


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_without_a_token_this_host_may_scrape(tokenless: Flask, address: str) -> None:
    answer = tokenless.test_client().get("/metrics", environ_base={"REMOTE_ADDR": address})
    assert answer.status_code == 200
    assert "broker_http_requests_total" in answer.text
