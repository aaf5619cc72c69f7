"""Automation clients (issue 19; ``broker.oidc.client_grants``): registered by the operator with grant_types
``["client_credentials"]`` and admin scopes, confidential, without redirect URIs; never through dynamic
registration, never mixed with an app people sign in to, never holding a scope that stays with people."""

from __future__ import annotations

from typing import Any

import pytest

from broker.oidc.client import OidcClient, hash_secret
from broker.oidc.client_metadata import (
    ClientMetadataError,
    RegistrationPolicy,
    client_metadata_document,
    parse_client_metadata,
)
from broker.registry.oidc_clients import FILE_POLICY

SECRET_HASH = hash_secret("s" * 43)
DYNAMIC = RegistrationPolicy(allowed_hosts=frozenset({"*.city.example.org"}), dynamic=True)
CALLBACK = "https://permits.city.example.org/oidc/callback"


def _automation(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"client_id": "ci-pipeline", "grant_types": ["client_credentials"],
                           "scope": "admin:manage-parties admin:view-audit", "client_secret_hash": SECRET_HASH}
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not None}


def _parse(raw: object, policy: RegistrationPolicy = FILE_POLICY) -> OidcClient:
    return parse_client_metadata(raw, policy, client_id="generated" if policy.dynamic else None,
                                 source="metadata/oidc-clients/ci.json")


def test_an_automation_client_needs_no_redirect_uri_and_reads_back_the_same() -> None:
    client = _parse(_automation())

    assert client.is_automation and client.grant_types == ("client_credentials",)
    assert client.scope == ("admin:manage-parties", "admin:view-audit") and client.redirect_uris == ()
    document = client_metadata_document(client)
    assert document["response_types"] == [] and document["redirect_uris"] == []
    assert _parse({**document, "client_secret_hash": SECRET_HASH}) == client


@pytest.mark.parametrize(("changes", "message"), [
    ({"scope": "admin:view-audit admin:reveal-claims"}, "'admin:reveal-claims' never goes to a client"),
    ({"scope": "admin:manage-operators"}, "admin:manage-operators and admin:reveal-claims stay with people"),
    ({"scope": "openid admin:view-audit"}, "'openid' not offered to an automation client"),
    ({"scope": "admin:root"}, "'admin:root' not offered to an automation client"),
    ({"scope": ""}, "scope must list at least one admin scope"),
    ({"scope": None}, "scope must list the automation client's admin scopes"),
    ({"grant_types": ["client_credentials", "authorization_code"], "redirect_uris": [CALLBACK]},
     "client_credentials stands alone"),
    ({"token_endpoint_auth_method": "none", "client_secret_hash": None},
     "client_credentials needs a confidential client (RFC 6749 §4.4)"),
    ({"redirect_uris": [CALLBACK]}, "redirect_uris: an automation client (client_credentials) signs no one in"),
    ({"response_types": ["code"]}, "response_types: an automation client"),
])
def test_automation_clients_are_refused_with_what_to_do(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ClientMetadataError) as refused:
        _parse(_automation(**changes))

    assert message in str(refused.value), str(refused.value)


@pytest.mark.parametrize(("raw", "message"), [
    ({"redirect_uris": [CALLBACK], "scope": "openid admin:view-audit"},
     "'admin:view-audit' only for automation clients registered"),
    ({"redirect_uris": [CALLBACK], "scope": "openid admin:reveal-claims"}, "never goes to a client"),
])
def test_an_app_people_sign_in_to_holds_no_admin_scope(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ClientMetadataError) as refused:
        _parse({"client_id": "permits", "client_secret_hash": SECRET_HASH, **raw})

    assert message in str(refused.value)


@pytest.mark.parametrize(("raw", "message"), [
    (_automation(client_secret_hash=None), "client_credentials is only for automation clients the operator registers"),
    ({"redirect_uris": [CALLBACK], "scope": "openid admin:view-audit"}, "only for automation clients registered"),
    ({"redirect_uris": [CALLBACK], "grant_types": ["authorization_code", "client_credentials"]},
     "not through dynamic registration"),
])
def test_dynamic_registration_asks_for_neither(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ClientMetadataError) as refused:
        _parse(raw, DYNAMIC)

    assert refused.value.error == "invalid_client_metadata" and message in str(refused.value), str(refused.value)
