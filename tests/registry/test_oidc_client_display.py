"""What citizens see of an OpenID Connect client (RFC 7591 §2 ``client_name``, ``logo_uri``, ``policy_uri``) and
its ``default_upstream``: validated into ``OidcClient``, carried to the core's ``DownstreamParty``, written back by
``client_metadata_document``."""

from __future__ import annotations

from typing import Any

import pytest

from broker.oidc.client import OidcClient, hash_secret
from broker.oidc.client_metadata import ClientMetadataError, client_metadata_document, parse_client_metadata
from broker.registry.oidc_clients import FILE_POLICY

CALLBACK = "https://permits.city.example.org/oidc/callback"


def _parse(**members: Any) -> OidcClient:
    raw = {"client_id": "permits", "redirect_uris": [CALLBACK], "client_secret_hash": hash_secret("s" * 43),
           **members}
    return parse_client_metadata(raw, FILE_POLICY, client_id=None, source="metadata/oidc-clients/permits.json")


def test_name_logo_policy_and_default_upstream_reach_the_party_and_the_document() -> None:
    client = _parse(client_name="Parking permits", logo_uri="https://permits.city.example.org/logo.png",
                    policy_uri="https://permits.city.example.org/privacy", allowed_upstreams=["city", "google"],
                    default_upstream="city")

    party = client.party()
    assert (party.display_name, party.logo_uri, party.policy_uri) == (
        "Parking permits", "https://permits.city.example.org/logo.png", "https://permits.city.example.org/privacy")
    assert (party.allowed_upstreams, party.default_upstream) == (("city", "google"), "city")
    document = client_metadata_document(client)
    assert {k: document[k] for k in ("logo_uri", "policy_uri", "default_upstream")} == {
        "logo_uri": "https://permits.city.example.org/logo.png",
        "policy_uri": "https://permits.city.example.org/privacy", "default_upstream": "city"}
    again = parse_client_metadata({**document, "client_secret_hash": client.client_secret_hash}, FILE_POLICY,
                                  client_id=None, source=client.source)
    assert again == client


@pytest.mark.parametrize(("client_id", "name", "shown"), [
    ("permits", None, "permits"),  # no client_name: the client_id, which is a name
    ("https://permits.city.example.org/app", None, "permits.city.example.org"),  # a URL client_id: its host
    ("https://permits.city.example.org/app", "https://permits.city.example.org", "permits.city.example.org"),
])
def test_citizens_never_see_a_url_as_the_apps_name(client_id: str, name: str | None, shown: str) -> None:
    client = _parse(client_id=client_id, **({"client_name": name} if name else {}))

    assert client.party().display_name == shown


@pytest.mark.parametrize(("members", "problem"), [
    ({"logo_uri": "http://permits.city.example.org/logo.png"}, "logo_uri must be an https URL"),
    ({"logo_uri": "javascript:alert(1)"}, "logo_uri must be an https URL"),
    ({"policy_uri": "data:image/png;base64,iVBORw0KGgo="}, "policy_uri must be an https URL"),
    ({"allowed_upstreams": ["city"], "default_upstream": "google"}, "default_upstream must be the name"),
    ({"default_upstream": ["city"]}, "default_upstream must be the name"),
])
def test_what_cannot_be_shown_or_routed_is_refused(members: dict[str, Any], problem: str) -> None:
    with pytest.raises(ClientMetadataError) as caught:
        _parse(**members)

    assert problem in str(caught.value)
