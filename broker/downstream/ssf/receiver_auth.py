"""Who calls the stream management API (SSF 1.0 §8.1; issue 18): a registered OpenID client, authenticated with
its client secret in HTTP Basic (RFC 7617, encoded as RFC 6749 §2.3.1 says), on every request.

The provider offers no client-credentials grant (``OidcProvider``: authorization code and refresh token only), so
there is no access token to present; Basic on each request is what a confidential client can always do. Clients
registered with ``client_secret_basic`` or ``client_secret_post`` hold the same kind of secret and may use it here;
a client registered with ``private_key_jwt`` or ``none`` has no secret and cannot manage streams (it is refused
like a wrong secret). Every failure is the same 401 ``invalid_client`` with a Basic challenge, the reason in the
operator's log only.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from urllib.parse import unquote_plus

from broker.downstream.oidc.errors import invalid_client
from broker.oidc.client import OidcClient
from broker.oidc.client_metadata import SECRET_METHODS


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """(client_id, secret) of a Basic ``Authorization`` header, each part form-urlencoded (RFC 6749 §2.3.1);
    None when there is no such header or it cannot be read."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        return None
    return unquote_plus(user), unquote_plus(password)


def authenticate_receiver(authorization: str | None, lookup: Callable[[str], OidcClient | None]) -> OidcClient:
    """The registered client whose secret the request carries, or ``OAuthError`` (401 invalid_client)."""
    credentials = basic_credentials(authorization)
    if credentials is None:
        raise invalid_client("no readable HTTP Basic credentials")
    client_id, secret = credentials
    client = lookup(client_id) if len(client_id) <= 255 else None
    if client is None:
        raise invalid_client(f"unknown client {client_id[:80]!r}")
    if client.token_endpoint_auth_method not in SECRET_METHODS:
        raise invalid_client(f"{client_id!r} registered {client.token_endpoint_auth_method}: no client secret")
    if not client.check_secret(secret):
        raise invalid_client(f"wrong secret for {client_id!r}")
    return client
