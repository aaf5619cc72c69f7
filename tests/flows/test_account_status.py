"""Disabling a citizen's account and enabling it again, end to end (issue 18): the operator runs ``broker accounts``
against a running federation; the app that subscribed gets RISC ``account-disabled`` and ``account-enabled`` as
SETs checked by a real SSF receiver (``ssf_receiver_support``); the citizen's session is over, and while the
account is disabled a sign-in at the OpenID app (a real authlib client) is ``access_denied``, at the SAML app
(pysaml2) a RequestDenied status, at the portal a page that says so; then it works again. And RISC
``identifier-changed``: the upstream asserts another verified address, and the app that subscribed hears it
without the address."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from broker.cli.main import main
from broker.core.security_events import SecurityEvent
from broker.delivery.worker import deliver_due
from broker.demo.oidc_provider_config import DemoUser
from tests.cli_support import Result
from tests.flows.federation import CITIZEN, Federation, saml_status
from tests.flows.oidc_peers import relying_party
from tests.flows.oidc_registration_support import sign_in
from tests.flows.portal_support import account_id, services
from tests.flows.ssf_receiver_support import SsfReceiver, loopback_post, validate_set
from tests.peers.browser import Browser

PUSH = "urn:ietf:rfc:8935"
DISABLED, ENABLED = SecurityEvent.ACCOUNT_DISABLED.value, SecurityEvent.ACCOUNT_ENABLED.value
CHANGED = SecurityEvent.IDENTIFIER_CHANGED.value
STATUS = "urn:oasis:names:tc:SAML:2.0:status:"
REFRESHING: dict[str, Any] = {"grant_types": ["authorization_code", "refresh_token"]}


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """``broker ...`` in-process, as the operator types it; no BROKER_* variable of the test run leaks in."""
    for name in [n for n in os.environ if n.startswith("BROKER_")]:
        monkeypatch.delenv(name)

    def cli(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return cli


def config(fed: Federation) -> str:
    return str(fed.folder / "broker.toml")


def new_stream(fed: Federation, auth: tuple[str, str], url: str, events: list[str]) -> None:
    response = requests.post(f"{fed.url}/ssf/streams", auth=auth, timeout=10,
                             json={"delivery": {"method": PUSH, "endpoint_url": url}, "events_requested": events})
    assert response.status_code == 201, response.text


def delivered_events(fed: Federation, receiver: SsfReceiver, audience: str, sub: str) -> list[dict[str, Any]]:
    """Run the delivery worker once; the events of every SET the receiver holds, each checked as a receiver
    checks it and about the app's own subject."""
    outbox = services(fed).outbox
    assert outbox is not None
    deliver_due(outbox, loopback_post(), datetime.now(UTC))
    metadata = requests.get(f"{fed.url}/.well-known/ssf-configuration", timeout=10).json()
    jwks = requests.get(metadata["jwks_uri"], timeout=10).json()
    found = []
    for pushed in receiver.pushed:
        claims = validate_set(pushed.body, jwks, metadata["issuer"], audience)
        assert claims["sub_id"] == {"format": "iss_sub", "iss": metadata["issuer"], "sub": sub}
        found.append(claims["events"])
    return found


def saml_answer(fed: Federation, browser: Browser) -> tuple[str, str | None]:
    _, page = fed.login(browser, "sp1")
    assert page.status_code == 200, page.text[:300]
    return saml_status(browser.form_fields(page))


def test_a_disabled_account_signs_in_nowhere_and_its_app_is_told(federation: Federation, browser: Browser,
                                                                  cli: Any) -> None:
    fed = federation
    with relying_party(fed, "status-app") as rp, SsfReceiver().start() as receiver:
        assert sign_in(browser, rp).status_code == 200
        assert rp.last.id_token_claims is not None and rp.secret is not None
        sub = rp.last.id_token_claims["sub"]
        new_stream(fed, ("status-app", rp.secret), receiver.url, [DISABLED, ENABLED])
        assert saml_answer(fed, browser)[0] == STATUS + "Success"  # the same session answers the SAML app
        account = account_id(fed)

        disabled = cli("--config", config(fed), "accounts", "disable", account, "--reason", "hijacking", "--json")
        assert disabled.code == 0, disabled.err
        assert disabled.json() == {"account_id": account, "changed": True, "sessions_ended": 1, "events_queued": 1}
        [events] = delivered_events(fed, receiver, "status-app", sub)
        assert set(events) == {DISABLED} and events[DISABLED]["reason"] == "hijacking"  # RISC 1.0 §2.3

        upstream_sign_ins = fed.provider.hits("authorize")
        sign_in(browser, rp)
        assert rp.last.error == "access_denied" and rp.last.token is None
        assert fed.provider.hits("authorize") == upstream_sign_ins + 1, "the session ended: it went upstream"
        assert saml_answer(fed, browser) == (STATUS + "Responder", STATUS + "RequestDenied")
        portal = browser.get(f"{fed.url}/account/")
        refused = browser.submit(portal)
        assert refused.status_code == 403 and "This account has been disabled." in refused.text
        failures = [r for r in services(fed).audit.events(account_id=account)
                    if r.kind == "login-failed" and r.reason == "account disabled"]
        assert len(failures) == 3
        shown = cli("--config", config(fed), "accounts", "show", account, "--json")
        assert shown.json()["status"] == "disabled" and shown.json()["disabled_reason"] == "hijacking"
        assert shown.json()["live_sessions"] == 0

        enabled = cli("--config", config(fed), "accounts", "enable", account)
        assert enabled.code == 0 and "enabled: 1 account-enabled events queued" in enabled.out
        assert set(delivered_events(fed, receiver, "status-app", sub)[-1]) == {ENABLED}  # RISC 1.0 §2.4
        sign_in(browser, rp)
        assert rp.last.error is None and rp.last.id_token_claims is not None
        assert rp.last.id_token_claims["sub"] == sub
        assert saml_answer(fed, browser)[0] == STATUS + "Success"

    shown = cli("--config", config(fed), "accounts", "show", account)
    assert shown.code == 0 and "status           enabled" in shown.out
    assert "sign-in methods  Test OpenID provider" in shown.out and "live sessions    1" in shown.out
    assert "anna" not in shown.out.lower()  # no claim value
    unknown = cli("--config", config(fed), "accounts", "disable", "no-such-account")
    assert unknown.code == 1 and "no account no-such-account" in unknown.err


def test_the_token_endpoint_and_userinfo_refuse_a_disabled_account(federation: Federation,
                                                                  browser: Browser) -> None:
    """Disabling revokes the account's grants; should one still live (a sign-in that raced the disabling), the
    token endpoint refuses its refresh token (RFC 6749 §5.2 ``invalid_grant``) and UserInfo its access token."""
    fed = federation
    with relying_party(fed, "status-tokens", **REFRESHING) as rp:
        sign_in(browser, rp)
        assert rp.last.token is not None and rp.secret is not None
        access, refresh = rp.last.token["access_token"], rp.last.token["refresh_token"]
        bearer = {"Authorization": f"Bearer {access}"}
        assert requests.get(f"{fed.url}/oidc/userinfo", headers=bearer, timeout=10).status_code == 200
        services(fed).accounts.set_disabled(account_id(fed), datetime.now(UTC), None)  # the grant stays live

        userinfo = requests.get(f"{fed.url}/oidc/userinfo", headers=bearer, timeout=10)
        assert userinfo.status_code == 401 and 'error="invalid_token"' in userinfo.headers["WWW-Authenticate"]
        renewed = requests.post(f"{fed.url}/oidc/token", auth=(rp.client_id, rp.secret), timeout=10,
                                data={"grant_type": "refresh_token", "refresh_token": refresh})
        assert renewed.status_code == 400 and renewed.json()["error"] == "invalid_grant"


def test_a_changed_verified_address_is_told_without_the_address(federation: Federation) -> None:
    """RISC 1.0 §2.5: the app (which may not even receive the address: scope ``openid`` only) hears that the
    identifier changed, for its own ``sub``, with no ``new-value``."""
    fed = federation
    with relying_party(fed, "status-mail", scope="openid") as rp, SsfReceiver().start() as receiver:
        with Browser() as first:
            assert sign_in(first, rp).status_code == 200
        assert rp.last.id_token_claims is not None and rp.secret is not None
        sub = rp.last.id_token_claims["sub"]
        new_stream(fed, ("status-mail", rp.secret), receiver.url, [CHANGED])
        with Browser() as same_address:
            assert sign_in(same_address, rp).status_code == 200
        assert delivered_events(fed, receiver, "status-mail", sub) == []

        new_address = "anna.virtanen@example.org"
        fed.provider.store.replace_user(DemoUser(CITIZEN.username, CITIZEN.password,
                                                 {**CITIZEN.claims, "email": new_address}))
        with Browser() as changed:
            assert sign_in(changed, rp).status_code == 200
        assert rp.last.id_token_claims is not None and rp.last.id_token_claims["sub"] == sub
        events = delivered_events(fed, receiver, "status-mail", sub)

    assert len(events) == 1 and set(events[0]) == {CHANGED}
    assert set(events[0][CHANGED]) == {"event_timestamp"}  # no new-value
    assert "anna" not in json.dumps(events)

