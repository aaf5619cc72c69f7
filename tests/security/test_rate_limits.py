"""Abuse limits: per client address, per upstream callback, per downstream app; 429 with Retry-After and a
readable page; a proxy's X-Forwarded-For only counts when the proxy is trusted."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from broker.app import close_app, create_app
from broker.config.settings import ConfigError, load_settings
from tests.flows.federation import Federation, make_keys, running_federation
from tests.peers.browser import Browser


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_keys(tmp_path_factory.mktemp("keys"))


def _federation(tmp_path: Path, keys: Path, limits: str) -> Iterator[Federation]:
    with running_federation(tmp_path / "instance", keys, f"sqlite:///{tmp_path / 'b.db'}",
                            extra_config="\n[limits]\n" + limits) as running:
        yield running


def _assert_limited(page: requests.Response) -> None:
    assert page.status_code == 429
    assert int(page.headers["Retry-After"]) > 0
    assert 'class="reference"' in page.text and "Traceback" not in page.text


def test_one_client_address_is_limited(tmp_path: Path, keys: Path, caplog: pytest.LogCaptureFixture) -> None:
    for federation in _federation(tmp_path, keys, 'per_ip = "3/minute"\n'):
        _, location = federation.sps["sp1"].redirect_request()
        with Browser() as browser, caplog.at_level(logging.WARNING, "broker.security"):
            pages = [browser.get(location, follow=False) for _ in range(4)]
        assert [p.status_code for p in pages[:3]] == [302, 302, 302]
        _assert_limited(pages[3])
        assert any("rate limit exceeded" in r.getMessage() for r in caplog.records)


def test_one_app_is_limited_without_starving_the_others(tmp_path: Path, keys: Path) -> None:
    for federation in _federation(tmp_path, keys, 'per_downstream = "2/minute"\naddress_share = 1\n'):
        with Browser() as browser:
            sp1 = [browser.get(federation.sps["sp1"].redirect_request()[1], follow=False) for _ in range(3)]
            sp2 = browser.get(federation.sps["sp2"].redirect_request()[1], follow=False)
        assert [p.status_code for p in sp1[:2]] == [302, 302]
        _assert_limited(sp1[2])
        assert sp2.status_code == 302


def test_one_upstream_callback_is_limited(tmp_path: Path, keys: Path) -> None:
    for federation in _federation(tmp_path, keys, 'per_upstream = "2/minute"\naddress_share = 1\n'):
        with Browser() as browser:
            op = [browser.get(federation.url + "/upstream/oidc/op/callback?state=x&code=y") for _ in range(3)]
            other = browser.get(federation.url + "/upstream/oidc/other/callback?state=x&code=y")
        assert [p.status_code for p in op[:2]] == [400, 400]  # refused as unknown state, but counted
        _assert_limited(op[2])
        assert other.status_code == 400


@pytest.mark.parametrize(("trusted", "limited"), [(0, True), (1, False)])
def test_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path: Path, keys: Path, trusted: int,
                                                        limited: bool) -> None:
    for federation in _federation(tmp_path, keys, 'per_ip = "2/minute"\n'):
        config = federation.folder / "broker.toml"
        config.write_text(config.read_text().replace("[broker]", f"[broker]\ntrusted_proxies = {trusted}", 1))
        app = create_app(load_settings(config, environ={}))
        try:
            client = app.test_client()
            codes = [client.get("/login/x", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
                     for i in range(3)]
        finally:
            close_app(app)
        # without a trusted proxy the header is the client's own claim and changes nothing
        assert (codes[2] == 429) is limited


def test_limits_must_be_valid_rates(tmp_path: Path, keys: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[limits\] per_ip must be a rate"):
        next(_federation(tmp_path, keys, 'per_ip = "lots"\n'))
