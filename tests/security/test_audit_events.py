"""Security events reach the audit log: sign-ins (how, for whom by pseudonymous id only), failures with
their reason and support reference, refused forms, rate-limit trips, registration changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import lxml.html  # type: ignore[import-untyped]
import pytest
from sqlalchemy import select

from broker.core import login_time
from broker.demo.oidc_provider_config import Mischief
from broker.storage import create_engine_for
from broker.storage.tables import AuditEventRow
from tests.flows.federation import CITIZEN, Federation, make_keys, running_federation
from tests.peers.browser import Browser
from tests.peers.servers import closed_port_url


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def browser() -> Iterator[Browser]:
    with Browser() as b:
        yield b


@pytest.fixture
def federation(tmp_path: Path, keys: Path) -> Iterator[Federation]:
    with running_federation(tmp_path / "instance", keys, f"sqlite:///{tmp_path / 'b.db'}",
                            extra_config='\n[limits]\nper_ip = "8/minute"\n') as running:
        yield running


def _events(federation: Federation) -> list[tuple[str, str | None, str | None, str | None, str | None]]:
    engine = create_engine_for(federation.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(AuditEventRow).order_by(AuditEventRow.id)).all()
    finally:
        engine.dispose()
    return [(r.kind, r.account_id, r.upstream, r.downstream, r.reason) for r in rows]


def test_sign_ins_are_recorded_with_how_and_for_whom(federation: Federation, browser: Browser) -> None:
    federation.login(browser, "sp1")
    federation.login(browser, "sp2")  # SSO

    events = _events(federation)
    sp1, sp2 = federation.sps["sp1"].entity_id, federation.sps["sp2"].entity_id
    assert [(e[0], e[2], e[3], login_time.read(e[4])[0]) for e in events] == [
        ("consent-given", None, sp1, "exempt"), ("login-succeeded", "op", sp1, "upstream"),
        ("consent-given", None, sp2, "exempt"), ("login-succeeded", "op", sp2, "sso")]
    assert all(login_time.read(e[4])[1] is not None for e in events if e[0] == "login-succeeded")  # timed
    assert events[0][1] and len({e[1] for e in events}) == 1  # one pseudonymous account id throughout
    everything = json.dumps(events)
    assert str(CITIZEN.claims["email"]) not in everything and str(CITIZEN.claims["sub"]) not in everything


def test_failures_refusals_and_limits_are_recorded(federation: Federation, browser: Browser) -> None:
    federation.provider.mischief = Mischief(claim_overrides={"nonce": "x"})
    federation.login(browser)  # refused ID token: a SAML error to the app
    browser.get(federation.url + "/login/not-a-handle")  # a page
    (federation.folder / "metadata" / "upstreams" / "city.json").write_text(json.dumps({
        "name": "city", "protocol": "oidc", "issuer": closed_port_url(), "client_id": "broker",
        "client_secret_file": "certs/op-client.secret"}))
    federation.app.extensions["broker"].registry.reload()
    federation.provider.mischief = Mischief()
    _, discovery = federation.login(browser)
    form = lxml.html.document_fromstring(discovery.text).forms[0]
    browser.post(discovery.url.rsplit("/login/", 1)[0] + form.action, {}, initiator=discovery.url)  # no CSRF token
    # per_ip is 8 a minute: a fixed number of requests, so a missing limit fails here rather than looping
    assert 429 in [browser.get(federation.url + "/login/x").status_code for _ in range(9)]

    kinds = [(e[0], e[4]) for e in _events(federation)]
    assert ("login-failed", "UpstreamVerificationFailed") in kinds
    assert ("login-failed", "LoginStateInvalid") in kinds
    assert ("registration-changed", "added upstream city") in kinds
    assert ("request-refused", "csrf: login.go_upstream") in kinds
    assert ("rate-limited", "login.discover") in kinds
