"""Automation clients and the admin API (issue 19), over real HTTP: a CI pipeline registered by the operator with
``admin:view-audit`` gets an access token by the client credentials grant (HTTP Basic, RFC 6749 §4.4) and reads
the audit trail, and is refused what its scope does not cover; every token the API must not accept is 401
``invalid_token`` (RFC 6750 §3.1, RFC 9068 §4); dynamic registration can ask for neither the grant nor the scopes."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from broker.core.audit import AuditKind
from broker.keys.jwt import sign_jwt
from tests.flows.admin_api_support import (
    REGISTRATION_TOKEN,
    AdminWorld,
    anna,
    automation_client,
    bearer,
    choose,
    client_token,
    conforms,
    token_request,
    write_client,
)
from tests.flows.federation import FixedClock, saml_status
from tests.flows.oidc_peers import relying_party
from tests.flows.portal_support import services
from tests.flows.saml_peers import SpKeys, TestSp
from tests.peers.browser import Browser
from tests.peers.tls import throwaway_ca, trusted_by_requests

CI = "ci-pipeline"



def _claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return claims


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _refused_token(answer: requests.Response) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]


def test_a_ci_pipeline_reads_the_audit_trail_and_nothing_else(world: AdminWorld) -> None:
    secret = automation_client(world, CI, "admin:view-audit")

    answer = token_request(world, CI, secret)
    body = answer.json()
    audit = bearer(world, body["access_token"], "GET", "/audit?limit=10")
    citizens = bearer(world, body["access_token"], "GET", "/citizens?email=anna@example.org")
    operators = bearer(world, body["access_token"], "GET", "/operators")

    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 300, "admin:view-audit")
    assert "refresh_token" not in body and "id_token" not in body
    claims = _claims(body["access_token"])
    assert (claims["sub"], claims["client_id"], claims["aud"]) == (CI, CI, f"{world.url}/api/admin")
    assert audit.status_code == 200
    conforms(audit, "list-audit")
    assert any(r["kind"] == AuditKind.ADMIN_TOKEN_ISSUED.value and r["downstream"] == CI
               for r in audit.json()["records"])
    for refused, scope in ((citizens, 'scope="admin:look-up-citizens"'), (operators, None)):
        assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope", refused.text
        challenge = refused.headers["WWW-Authenticate"]
        assert 'error="insufficient_scope"' in challenge and (scope is None or scope in challenge)
    me = bearer(world, body["access_token"], "GET", "/whoami").json()
    assert (me["kind"], me["id"], me["permissions"], "csrf_token" in me) == ("client", CI, ["view-audit"], False)
    assert bearer(world, body["access_token"], "POST", "/audit/verify").json()["intact"] is True  # no CSRF needed
    refusals = [r for r in services(world.federation).audit.events(limit=50)
                if r.kind == AuditKind.OPERATOR_REFUSED.value and r.downstream == CI]
    assert len(refusals) == 2


def test_a_client_allowed_to_manage_citizens_is_audited_by_name(world: AdminWorld) -> None:
    citizen = anna(world)
    secret = automation_client(world, CI, "admin:look-up-citizens admin:manage-citizens")
    token = client_token(world, CI, secret)

    found = bearer(world, token, "GET", "/citizens?email=anna@example.org")
    disabled = bearer(world, token, "POST", f"/citizens/{citizen}/disable", {"reason": "bulk-account"})

    assert found.json()["accounts"] == [citizen]
    assert (disabled.status_code, disabled.json()["after"]) == (200, "disabled")
    reasons = {r.kind: r.reason or "" for r in services(world.federation).audit.events(account_id=citizen)}
    assert f"by client {CI}" in reasons[AuditKind.ACCOUNT_DISABLED.value]
    assert reasons[AuditKind.OPERATOR_LOOKUP.value].endswith(f"by client {CI}")


def test_only_the_registered_scopes_are_granted_and_only_to_automation_clients(world: AdminWorld) -> None:
    secret = automation_client(world, CI, "admin:view-audit")

    wider = token_request(world, CI, secret, scope="admin:view-audit admin:manage-citizens")
    people = token_request(world, CI, secret, scope="admin:reveal-claims")
    wrong_secret = token_request(world, CI, "not-the-secret")

    assert (wider.status_code, wider.json()["error"]) == (400, "invalid_scope")
    assert (people.status_code, people.json()["error"]) == (400, "invalid_scope")
    assert (wrong_secret.status_code, wrong_secret.json()["error"]) == (401, "invalid_client")
    with relying_party(world.federation, scope="openid profile") as rp:  # an app people sign in to
        assert rp.secret is not None
        app = token_request(world, rp.client_id, rp.secret)
        assert (app.status_code, app.json()["error"]) == (400, "unauthorized_client")
    discovery = requests.get(f"{world.url}/.well-known/openid-configuration", timeout=10).json()
    assert "client_credentials" in discovery["grant_types_supported"]


def test_tokens_the_api_does_not_accept(world: AdminWorld) -> None:
    secret = automation_client(world, CI, "admin:view-audit")
    token = client_token(world, CI, secret)
    header, payload, signature = token.split(".")
    claims = _claims(token)
    key = services(world.federation).keys.signing_key("RS256")

    tampered = ".".join((header, _b64({**claims, "scope": "admin:view-audit admin:manage-citizens"}), signature))
    unsigned = ".".join((_b64({"alg": "none", "typ": "at+jwt"}), payload, ""))
    elsewhere = sign_jwt({**claims, "aud": f"{world.url}/oidc/userinfo"}, key, typ="at+jwt")
    untyped = sign_jwt(claims, key, typ="JWT")  # all else right: only its type says it is no access token

    for bad in (tampered, unsigned, elsewhere, untyped, "not-a-jwt"):
        _refused_token(bearer(world, bad, "GET", "/audit"))
    assert bearer(world, token, "GET", "/audit").status_code == 200  # the genuine one still works
    basic = requests.get(f"{world.url}/api/admin/v1/audit", auth=(CI, secret), timeout=10)
    assert basic.status_code == 401 and basic.json()["error"] == "invalid_request"


def test_an_expired_token_is_refused(world: AdminWorld) -> None:
    token = client_token(world, CI, automation_client(world, CI, "admin:view-audit"))

    later = services(world.federation).clock.now() + timedelta(minutes=6)
    world.federation.set_clock(FixedClock(later))

    _refused_token(bearer(world, token, "GET", "/audit"))


def test_an_id_token_is_no_access_token(world: AdminWorld) -> None:
    with relying_party(world.federation) as rp, Browser() as browser:
        choose(browser, browser.get(f"{rp.url}/login"), "op")
        assert rp.outcomes and rp.outcomes[-1].token is not None, rp.outcomes
        id_token = rp.outcomes[-1].token["id_token"]

    _refused_token(bearer(world, id_token, "GET", "/audit"))
    _refused_token(bearer(world, id_token, "GET", "/whoami"))


def test_a_removed_client_or_a_removed_scope_stops_its_tokens_at_once(world: AdminWorld) -> None:
    secret = automation_client(world, CI, "admin:view-audit admin:look-up-citizens")
    token = client_token(world, CI, secret)

    automation_client(world, CI, "admin:look-up-citizens")  # the operator took view-audit away
    narrowed = bearer(world, token, "GET", "/audit")
    write_client(world, CI, None)  # and then removed the client
    removed = bearer(world, token, "GET", "/citizens?account=x")

    assert (narrowed.status_code, narrowed.json()["error"]) == (403, "insufficient_scope")
    _refused_token(removed)


def test_a_bearer_token_is_used_alone_even_beside_a_console_cookie(world: AdminWorld) -> None:
    with requests.Session() as session:
        session.cookies.set("broker_console", "x" * 40)
        answer = session.get(f"{world.url}/api/admin/v1/whoami", headers={"Authorization": "Bearer nonsense"},
                             timeout=10)
    _refused_token(answer)


@pytest.mark.parametrize("metadata", [
    {"grant_types": ["client_credentials"], "scope": "admin:view-audit", "redirect_uris": []},
    {"grant_types": ["authorization_code", "client_credentials"], "scope": "openid"},
    {"scope": "openid admin:view-audit"},
    {"scope": "openid admin:reveal-claims"},
])
def test_dynamic_registration_asks_for_neither_the_grant_nor_admin_scopes(world: AdminWorld,
                                                                          metadata: dict[str, Any]) -> None:
    answer = requests.post(f"{world.url}/oidc/register", timeout=10,
                           headers={"Authorization": f"Bearer {REGISTRATION_TOKEN}"},
                           json={"redirect_uris": ["https://127.0.0.1/cb"], **metadata})

    assert answer.status_code == 400 and answer.json()["error"] == "invalid_client_metadata", answer.text
    registered = requests.post(f"{world.url}/oidc/register", timeout=10,
                               headers={"Authorization": f"Bearer {REGISTRATION_TOKEN}"},
                               json={"redirect_uris": ["https://127.0.0.1/cb"]})
    assert registered.status_code == 201  # registration itself is open: only those were refused


def test_a_ci_pipeline_registers_a_saml_app_and_a_citizen_signs_in_to_it(world: AdminWorld,
                                                                         key_folder: Path) -> None:
    """``admin:manage-parties``: preview (the diff, nothing written), register, and the app works at once."""
    fed = world.federation
    keys = SpKeys(key_folder / "sp3" / "signing.key", key_folder / "sp3" / "signing.crt")
    sp = TestSp("http://127.0.0.1:9/sp3", keys)
    with trusted_by_requests(throwaway_ca()):
        sp.connect(requests.get(fed.url + "/saml2/idp/metadata", timeout=10).text)
    token = client_token(world, CI, automation_client(world, CI, "admin:view-parties admin:manage-parties"))
    request = {"kind": "saml", "document": sp.metadata(), "settings": {"display_name": "Library loans"}}

    preview = bearer(world, token, "POST", "/apps/preview", request)
    broken = bearer(world, token, "POST", "/apps", {"kind": "saml", "document": "<EntityDescriptor/>"})
    assert sp.entity_id not in {a["party_id"] for a in bearer(world, token, "GET", "/apps").json()["apps"]}
    registered = bearer(world, token, "POST", "/apps", request)

    conforms(preview, "preview-app")
    assert preview.json()["problems"] == [] and preview.json()["party_ids"] == [sp.entity_id]
    assert {"field": "display_name", "after": "Library loans"}.items() <= next(
        c for c in preview.json()["changes"] if c["field"] == "display_name").items()
    assert broken.status_code == 409 and broken.json()["error"] == "refused"
    assert registered.status_code == 200, registered.text
    conforms(registered, "register-app")
    with Browser() as citizen:
        request_id, location = sp.redirect_request()
        page = choose(citizen, citizen.get(location), "op")  # the discovery page: the demo provider
        fields = citizen.form_fields(page)
        assert saml_status(fields)[0].endswith(":Success"), page.text[:500]
        assert sp.parse(fields["SAMLResponse"], request_id) is not None
    changed = [r.reason or "" for r in services(fed).audit.events(limit=50)
               if r.kind == AuditKind.REGISTRATION_CHANGED.value and r.downstream == sp.entity_id]
    assert any(f"by client {CI}" in reason for reason in changed)
