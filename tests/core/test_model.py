"""``broker.core.model``: a login request survives being stored as JSON while the citizen is upstream."""

from __future__ import annotations

import json

import pytest

from broker.core.model import LoginRequest, Protocol
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
    ),
]


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
