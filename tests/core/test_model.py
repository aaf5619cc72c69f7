"""``broker.core.model``: a login request survives being stored as JSON while the citizen is upstream."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from broker.core.model import EmailTrust, LoginRequest, Protocol, UpstreamIdentity
from tests.core.builders import request

REQUESTS = [
    request(),
    request(
        protocol=Protocol.OIDC,
        request_id=None,
        relay_state="opaque/state?with=chars&ü",
        requested_claims=frozenset({"email", "given_name", "address"}),
        acr_values=("loa3", "loa2"),
        force_authn=True,
        passive=True,
        upstream_hints=("itsme", "https://digid.example/"),
        protocol_state=(("binding", "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"), ("nameid", "persistent")),
        preferred_acr=("urn:city:loa:high",),
        login_hint="anna@example.org",
        max_age=0,
    ),
]


def test_a_request_stored_before_the_oidc_fields_reads_back() -> None:
    raw = json.loads(request().to_json())
    for name in ("preferred_acr", "login_hint", "max_age"):
        del raw[name]
    assert LoginRequest.from_json(json.dumps(raw)) == request()


@pytest.mark.parametrize("original", REQUESTS)
def test_json_round_trip(original: LoginRequest) -> None:
    back = LoginRequest.from_json(original.to_json())
    assert back == original
    assert back.state("binding") == original.state("binding")


def test_json_is_deterministic_for_equal_requests() -> None:
    one = request(requested_claims=frozenset(["email", "given_name", "family_name", "locale"]))
    other = request(requested_claims=frozenset(["locale", "family_name", "given_name", "email"]))
    assert one.to_json() == other.to_json()
    assert json.loads(one.to_json())["requested_claims"] == ["email", "family_name", "given_name", "locale"]


def test_state_looks_up_protocol_state() -> None:
    login = request(protocol_state=(("binding", "post"),))
    assert login.state("binding") == "post"
    assert login.state("missing") == ""
    assert login.state("missing", "fallback") == "fallback"


@pytest.mark.parametrize(("trust", "linkable"), [
    (EmailTrust.VERIFIED, "a@example.org"),
    (EmailTrust.UNVERIFIED, None),
    (EmailTrust.PRIVATE_RELAY, None),  # Apple relay addresses are unique per app
    (EmailTrust.MUTABLE, None),  # Microsoft Entra: editable by tenant admins (nOAuth)
])
def test_only_a_verified_address_is_ever_offered_for_linking(trust: EmailTrust, linkable: str | None) -> None:
    identity = UpstreamIdentity("up", "https://idp.example.org", "s", {"email": "a@example.org",
                                "email_verified": True}, None, datetime(2026, 1, 1, tzinfo=UTC), email_trust=trust)
    assert identity.linkable_email == linkable
