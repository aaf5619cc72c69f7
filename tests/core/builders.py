"""Small builders for the core's value types, with defaults a test overrides only where it matters."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from broker.core.claims import ClaimValue
from broker.core.model import DownstreamParty, LoginRequest, Protocol, UpstreamIdentity, UpstreamParty

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

DIGID = UpstreamParty("digid", Protocol.OIDC, "DigiD", "https://digid.example/")
ITSME = UpstreamParty("itsme", Protocol.OIDC, "itsme", "https://idp.itsme.example/")
EHERK = UpstreamParty("eherk", Protocol.SAML, "eHerkenning", "urn:eherk:idp")


def party(**overrides: Any) -> DownstreamParty:
    fields: dict[str, Any] = {
        "party_id": "https://sp.city.example/",
        "protocol": Protocol.SAML,
        "display_name": "City services",
        "requested_claims": frozenset({"email"}),
        "allowed_upstreams": ("digid", "itsme"),
    }
    return DownstreamParty(**(fields | overrides))


def request(**overrides: Any) -> LoginRequest:
    fields: dict[str, Any] = {
        "downstream": "https://sp.city.example/",
        "protocol": Protocol.SAML,
        "return_to": "https://sp.city.example/acs",
        "request_id": "_req-1",
        "relay_state": None,
        "requested_claims": frozenset(),
    }
    return LoginRequest(**(fields | overrides))


def identity(claims: Mapping[str, ClaimValue] | None = None, **overrides: Any) -> UpstreamIdentity:
    fields: dict[str, Any] = {
        "upstream": "digid",
        "issuer": "https://digid.example/",
        "subject": "subject-anna",
        "claims": {"email": "anna@example.org", "email_verified": True} if claims is None else claims,
        "acr": "loa2",
        "auth_time": NOW,
        "amr": ("pwd",),
    }
    return UpstreamIdentity(**(fields | overrides))
