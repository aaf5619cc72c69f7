"""The client credentials grant (RFC 6749 §4.4) at the token endpoint, for automation clients only: a CI pipeline
calling the admin API (issue 19; ``broker.oidc.client_grants`` says who may be registered for it).

The token endpoint has authenticated the client with the method it registered before this runs (RFC 6749
§4.4.2: "The client MUST authenticate with the authorization server"). Then:

- RFC 6749 §4.4: "MUST only be used by confidential clients": a public client is ``unauthorized_client``, and so is
  a client registered through Dynamic Client Registration, whatever its metadata says (only the operator's own
  registrations may hold admin scopes; the registration endpoint refuses both already);
- §4.4.2 ``scope``: each asked for must be one of the client's registered admin scopes (``invalid_scope``,
  §5.2); none asked for means all of them (§3.3: the pre-defined default);
- §4.4.3: the answer is an access token (an RFC 9068 JWT, ``broker.oidc.admin_tokens``) and "a refresh token
  SHOULD NOT be included".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from broker.downstream.oidc.errors import OAuthError
from broker.keys.keyring import KeyRing
from broker.oidc import admin_tokens
from broker.oidc.client import OidcClient

GRANT_TYPE = "client_credentials"


def grant(keys: KeyRing, issuer: str, client: OidcClient, requested: str | None, now: datetime) -> dict[str, Any]:
    """The token response (RFC 6749 §4.4.3, §5.1) for the authenticated ``client``; ``OAuthError`` otherwise."""
    registered = admin_tokens.registered_scopes(client)
    if not registered:
        raise OAuthError("unauthorized_client", f"the client is not registered for {GRANT_TYPE}",
                         detail=f"{client.client_id!r}: not an automation client the operator registered")
    asked = tuple(dict.fromkeys(s for s in requested.split(" ") if s)) if requested is not None else registered
    if not asked or not set(asked) <= set(registered):
        raise OAuthError("invalid_scope", "the requested scope is not one the client is registered for",
                         detail=f"{client.client_id!r} asked for {requested!r:.200}")
    return {
        "access_token": admin_tokens.issue(keys, issuer, client, asked, now),
        "token_type": "Bearer",
        "expires_in": int(admin_tokens.LIFETIME.total_seconds()),
        "scope": " ".join(asked),
    }
