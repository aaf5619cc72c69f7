"""Client authentication at the back-channel endpoints (RFC 6749 §2.3, OpenID Connect Core 1.0 §9).

Each client uses exactly the method it registered (``token_endpoint_auth_method``); a client that
registered ``private_key_jwt`` cannot fall back to a secret, and a public client (``none``) proves nothing
but its ``client_id``, which is why it must use PKCE. Failures all read ``invalid_client`` (RFC 6749 §5.2)
with the reason in the operator's log only.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote_plus

from broker.downstream.oidc.errors import OAuthError, invalid_client
from broker.oidc.client import OidcClient
from broker.oidc.client_assertion import InvalidClientAssertion, verify_client_assertion

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass(frozen=True)
class ClientCredentials:
    """What the request carried: its form fields and its Authorization header."""

    form: Mapping[str, str]
    authorization: str | None


def _basic(header: str) -> tuple[str, str] | None:
    """RFC 6749 §2.3.1: Basic credentials, each part form-urlencoded before base64 (RFC 7617)."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise invalid_client("Authorization header is not valid Basic credentials") from exc
    user, sep, password = decoded.partition(":")
    if not sep:
        raise invalid_client("Basic credentials without a colon")
    return unquote_plus(user), unquote_plus(password)


def authenticate(credentials: ClientCredentials, lookup: Callable[[str], OidcClient | None],
                 audiences: Collection[str], now: datetime,
                 first_use_of: Callable[[str, str, datetime], bool]) -> OidcClient:
    """The authenticated client, or ``OAuthError`` (invalid_client).

    ``first_use_of(client_id, jti, expires_at)`` records a client assertion's ``jti`` and says whether it was
    new: an assertion is good for one request only (RFC 7523 §3 item 7).
    """
    form = credentials.form
    basic = _basic(credentials.authorization) if credentials.authorization else None
    assertion = form.get("client_assertion")
    if sum((basic is not None, assertion is not None, "client_secret" in form)) > 1:
        raise invalid_client("more than one client authentication method (RFC 6749 §2.3)")
    if basic is not None:
        method, client_id = "client_secret_basic", basic[0]
    elif assertion is not None:
        if form.get("client_assertion_type") != JWT_BEARER:
            raise invalid_client("client_assertion_type is not jwt-bearer")
        method, client_id = "private_key_jwt", _assertion_subject(assertion, form.get("client_id"))
    elif "client_secret" in form:
        method, client_id = "client_secret_post", form.get("client_id", "")
    else:
        method, client_id = "none", form.get("client_id", "")
    if form.get("client_id") not in (None, client_id):
        raise invalid_client("client_id in the body differs from the authenticated client")
    client = lookup(client_id) if client_id else None
    if client is None:
        raise invalid_client(f"unknown client {client_id[:80]!r}")
    if client.token_endpoint_auth_method != method:
        raise invalid_client(f"{client_id!r} registered {client.token_endpoint_auth_method}, used {method}")
    if method == "client_secret_basic" and basic is not None and not client.check_secret(basic[1]):
        raise invalid_client(f"wrong secret for {client_id!r}")
    if method == "client_secret_post" and not client.check_secret(form.get("client_secret", "")):
        raise invalid_client(f"wrong secret for {client_id!r}")
    if method == "private_key_jwt" and assertion is not None:
        if client.jwks is None:
            raise invalid_client(f"{client_id!r} has no registered keys")
        try:
            verified = verify_client_assertion(assertion, client_id, client.jwks, audiences, now)
        except InvalidClientAssertion as exc:
            raise invalid_client(f"client assertion of {client_id!r}: {exc}") from exc
        if not first_use_of(client_id, verified.jti, verified.expires_at):
            raise invalid_client(f"client assertion jti of {client_id!r} replayed")
    return client


def claimed_client_id(credentials: ClientCredentials) -> str | None:
    """The client id the request claims (Basic user, else the form's ``client_id``, else the unverified ``sub``
    of its client assertion), without authenticating anything; None when it names none or cannot be read.
    For the per-client limits (``broker.web.ops.limits``), which must count before the costly check."""
    try:
        basic = _basic(credentials.authorization) if credentials.authorization else None
        if basic is not None:
            return basic[0] or None
        if "client_id" in credentials.form:
            return credentials.form["client_id"] or None
        assertion = credentials.form.get("client_assertion")
        return _assertion_subject(assertion, None) if assertion is not None else None
    except OAuthError:
        return None


def _assertion_subject(assertion: str, client_id: str | None) -> str:
    """The client the assertion claims to be (its unverified ``sub``), to find the keys to verify it with."""
    try:
        payload = assertion.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        subject = claims.get("sub") if isinstance(claims, dict) else None
    except (IndexError, ValueError, binascii.Error, UnicodeDecodeError, RecursionError) as exc:
        raise invalid_client("client_assertion is not a JWT") from exc
    if not isinstance(subject, str) or not subject:
        raise invalid_client("client_assertion has no sub")
    if client_id is not None and client_id != subject:
        raise invalid_client("client_id differs from the client assertion's sub")
    return subject

