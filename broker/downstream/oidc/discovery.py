"""The provider's discovery document (OpenID Connect Discovery 1.0 §3, RFC 8414 §2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.core.claims import CLAIMS
from broker.oidc.client import AUTH_METHODS, SCOPES, SIGNING_ALGS

ENDPOINTS = {
    "authorization_endpoint": "/oidc/authorize",
    "token_endpoint": "/oidc/token",
    "userinfo_endpoint": "/oidc/userinfo",
    "jwks_uri": "/oidc/jwks",
    "end_session_endpoint": "/oidc/logout",
    "revocation_endpoint": "/oidc/revoke",
    "introspection_endpoint": "/oidc/introspect",
    "registration_endpoint": "/oidc/register",
}


@dataclass(frozen=True)
class DiscoveryInputs:
    issuer: str
    registration_open: bool
    service_documentation: str | None = None


def discovery_document(inputs: DiscoveryInputs) -> dict[str, Any]:
    """Every REQUIRED member of Discovery §3 and the RECOMMENDED ones the broker supports; values match what
    the endpoints really do (no ``plain`` PKCE, no implicit flow, no request objects)."""
    issuer = inputs.issuer
    endpoints = {name: issuer + path for name, path in ENDPOINTS.items()
                 if name != "registration_endpoint" or inputs.registration_open}
    client_auth = [m for m in AUTH_METHODS if m != "none"] + ["none"]
    document: dict[str, Any] = {
        "issuer": issuer,
        **endpoints,
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        # client_credentials (RFC 6749 §4.4) only for automation clients the operator registered (the admin API)
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["pairwise", "public"],
        "id_token_signing_alg_values_supported": list(SIGNING_ALGS),
        "token_endpoint_auth_methods_supported": client_auth,
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256", "PS256"],
        "revocation_endpoint_auth_methods_supported": client_auth,
        "introspection_endpoint_auth_methods_supported": [m for m in client_auth if m != "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": sorted({"sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "amr", "sid", "nonce",
                                    "azp", "at_hash"} | {c.oidc_name for c in CLAIMS if c.oidc_name}),
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": True,
        "claim_types_supported": ["normal"],
        # Front-Channel Logout 1.0 §3 and Back-Channel Logout 1.0 §2.1 (``session_notices``): ``sid`` is always
        # known, so it goes in every logout token and, when the client asks, in the front-channel URL
        "frontchannel_logout_supported": True,
        "frontchannel_logout_session_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
    }
    if inputs.service_documentation:
        document["service_documentation"] = inputs.service_documentation
    return document
