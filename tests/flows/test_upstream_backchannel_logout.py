"""The upstream OpenID provider signs the citizen out through the back channel (issue 18; Back-Channel Logout 1.0
§2.5-2.8, the broker as relying party), over real HTTP: the citizen signs in to a SAML app through the demo provider
"op"; a logout token for the citizen's ``sub``, signed with the provider's own key (the one its JWKS publishes), is
POSTed to ``/upstream/op/backchannel-logout``; the broker answers 200 ``no-store`` and the citizen's next sign-in at
the app goes to the provider again instead of being answered from the SSO session. Every broken token is answered
400 with OAuth-style JSON, and ends nothing. When the provider's ID tokens carry its session id (``sid``, §2.1; the
demo provider's through ``Mischief(claim_overrides=...)``), a logout token naming it ends that browser's session
only, with or without the ``sub`` (§2.7).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

from broker.core.audit import AuditKind
from broker.demo.oidc_provider import Mischief
from broker.upstream.oidc_backchannel import LOGOUT_EVENT
from broker.web.services import Services
from tests.flows.federation import CITIZEN, CLIENT_ID, UPSTREAM, Federation, running_federation
from tests.peers.browser import Browser

FOREIGN_KEY = RSAKey.generate_key(2048)


def logout_token(fed: Federation, *, key: RSAKey | None = None, alg: str = "RS256", **changes: Any) -> str:
    """A logout token of the demo provider for the citizen; ``changes`` set (None: drop) claims."""
    now = int(time.time())
    claims: dict[str, Any] = {"iss": fed.provider.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 120,
                              "jti": secrets.token_urlsafe(16), "events": {LOGOUT_EVENT: {}},
                              "sub": CITIZEN.claims["sub"], "sid": "op-session-1"}
    claims = {k: v for k, v in {**claims, **changes}.items() if v is not None}
    header = {"alg": alg, "kid": fed.provider.current_kid, "typ": "logout+jwt"}
    if alg == "none":
        return f"{_b64(header)}.{_b64(claims)}."
    return jwt.encode(header, claims, key or fed.provider.keys.current, [alg])


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def post(fed: Federation, token: str, upstream: str = UPSTREAM) -> requests.Response:
    return requests.post(f"{fed.url}/upstream/{upstream}/backchannel-logout", data={"logout_token": token},
                         timeout=10, allow_redirects=False)


def signed_in_at_the_app(fed: Federation, browser: Browser) -> None:
    _, page = fed.login(browser)
    assert page.status_code == 200 and browser.is_self_submitting(page), page.text[:300]


def services(fed: Federation) -> Services:
    svc: Services = fed.app.extensions["broker"]
    return svc


def refused(answer: requests.Response) -> None:
    assert answer.status_code == 400, (answer.status_code, answer.text[:300])
    assert answer.json()["error"] == "invalid_request" and "Traceback" not in answer.text
    assert answer.headers["Cache-Control"] == "no-store"


def test_a_logout_token_from_the_upstream_ends_the_citizens_session(federation: Federation, browser: Browser) -> None:
    signed_in_at_the_app(federation, browser)
    signed_in_at_the_app(federation, browser)
    assert federation.provider.hits("authorize") == 1  # the second sign-in was answered from the SSO session
    good = logout_token(federation)
    bad = {
        "wrong key": logout_token(federation, key=FOREIGN_KEY),
        "alg none": logout_token(federation, alg="none"),
        "wrong iss": logout_token(federation, iss="https://evil.example"),
        "wrong aud": logout_token(federation, aud="another-client"),
        "nonce": logout_token(federation, nonce="n-1"),
        "no events": logout_token(federation, events=None),
        "no sub or sid": logout_token(federation, sub=None, sid=None),
        "expired": logout_token(federation, iat=int(time.time()) - 3600, exp=int(time.time()) - 3000),
        "in the future": logout_token(federation, iat=int(time.time()) + 3600),
        "not a JWT": "not-a-jwt",
    }

    for why, token in bad.items():
        answer = post(federation, token)
        assert answer.status_code == 400, why
        refused(answer)
    refused(post(federation, good, upstream="no-such-upstream"))
    refused(requests.post(f"{federation.url}/upstream/{UPSTREAM}/backchannel-logout", json={"logout_token": good},
                          timeout=10))  # §2.5: form-encoded
    signed_in_at_the_app(federation, browser)
    assert federation.provider.hits("authorize") == 1  # nothing ended

    answer = post(federation, good)

    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in answer.headers  # a server-to-server call opens no browser session
    signed_in_at_the_app(federation, browser)
    assert federation.provider.hits("authorize") == 2  # the session had ended: the citizen went upstream again
    events = [e for e in services(federation).audit.events(account_id=None) if e.kind == AuditKind.LOGGED_OUT.value]
    assert [(e.upstream, e.reason) for e in events] == \
        [(UPSTREAM, "back-channel logout token from the upstream provider")]
    refused(post(federation, good))  # §2.6: the same jti again


def signed_in_at_the_provider_session(fed: Federation, browser: Browser, sid: str) -> None:
    """``signed_in_at_the_app`` through a sign-in whose ID token carries the provider's session id ``sid``."""
    fed.provider.mischief = Mischief(claim_overrides={"sid": sid})
    try:
        signed_in_at_the_app(fed, browser)
    finally:
        fed.provider.mischief = Mischief()


def logged_out(fed: Federation) -> int:
    return sum(1 for e in services(fed).audit.events(account_id=None) if e.kind == AuditKind.LOGGED_OUT.value)


@pytest.mark.parametrize("with_sub", [True, False], ids=["sub-and-sid", "sid-alone"])
def test_a_logout_token_naming_the_providers_session_ends_that_browsers_session_only(
        federation: Federation, browser: Browser, with_sub: bool) -> None:
    """Two browsers of the citizen, signed in at two sessions of the provider: the token names the second one's."""
    with Browser() as other:
        signed_in_at_the_provider_session(federation, browser, "op-session-A")
        signed_in_at_the_provider_session(federation, other, "op-session-B")
        assert federation.provider.hits("authorize") == 2

        dropped: dict[str, Any] = {} if with_sub else {"sub": None}
        answer = post(federation, logout_token(federation, sid="op-session-B", **dropped))

        assert answer.status_code == 200, answer.text[:300]
        assert logged_out(federation) == 1
        signed_in_at_the_app(federation, browser)
        assert federation.provider.hits("authorize") == 2, "the first browser's session is still there"
        signed_in_at_the_app(federation, other)
        assert federation.provider.hits("authorize") == 3, "the second browser's session had ended"


def test_the_endpoint_is_limited_per_address(tmp_path: Path, key_folder: Path) -> None:
    """Anyone can post here: ``[limits] per_ip_api`` counts each address (``API_VIEWS``), as on the OpenID
    provider's own back channel."""
    with running_federation(tmp_path / "instance", key_folder, f"sqlite:///{tmp_path / 'b.db'}",
                            extra_config='\n[limits]\nper_ip_api = "2/hour"\n') as fed:
        client = fed.app.test_client()

        def from_address(address: str) -> int:
            return client.post(f"/upstream/{UPSTREAM}/backchannel-logout", base_url=fed.url,
                               environ_base={"REMOTE_ADDR": address}, data={"logout_token": "x.y.z"}).status_code

        assert [from_address("192.0.2.1") for _ in range(3)] == [400, 400, 429]
        assert from_address("192.0.2.2") == 400
