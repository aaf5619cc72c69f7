"""Codes, access tokens and refresh tokens: issuing them from a sign-in and redeeming them at the token
endpoint (RFC 6749 §4.1.2-§4.1.3, §6; RFC 7636 §4.6; OAuth 2.0 Security BCP RFC 9700 §2.2.2, §4.14).

- A code is single-use and short-lived. A second use revokes the grant, so every token issued from the
  first use stops working (RFC 6749 §4.1.2: "SHOULD revoke ... all tokens previously issued based on that
  authorization code").
- A code is bound to its client, its redirect URI and its PKCE challenge (RFC 7636 §4.6: S256 only).
- Refresh tokens rotate: each use returns a new one and burns the old. Presenting a burnt refresh token
  means it was copied; the whole grant is revoked (RFC 9700 §4.14.2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from broker.core.grants import Grant, NewToken, Redemption, TokenKind, new_token
from broker.core.model import LoginResult
from broker.core.ports import GrantStore
from broker.downstream.oidc.errors import OAuthError, invalid_grant
from broker.oidc.client import OidcClient


@dataclass(frozen=True)
class Lifetimes:
    code: timedelta
    access_token: timedelta
    id_token: timedelta
    refresh_token: timedelta


@dataclass(frozen=True)
class IssuedTokens:
    grant: Grant
    access_token: str
    expires_in: int
    refresh_token: str | None


def issue_code(store: GrantStore, result: LoginResult, claims: frozenset[str], sid: str,
               now: datetime, lifetimes: Lifetimes) -> tuple[Grant, str]:
    """A new grant for this sign-in and the code that stands for it; the grant keeps the values ``result``
    released of ``claims`` (``Grant.released``: the token endpoint and UserInfo answer from them)."""
    login = result.request
    grant = Grant(
        grant_id=uuid.uuid4().hex, client_id=login.downstream, account_id=result.account.account_id,
        scope=tuple(s for s in login.state("scope").split(" ") if s), claims=claims,
        redirect_uri=login.return_to, nonce=login.state("nonce") or None,
        code_challenge=login.state("code_challenge") or None, auth_time=result.auth_time, acr=result.acr,
        amr=result.amr, sid=sid, upstream=result.upstream, created_at=now,
        id_token_claims=frozenset(c for c in login.state("id_token_claims").split(" ") if c),
        released={name: value for name, value in result.released.items() if name in claims},
    )
    code = new_token()
    store.create_grant(grant, NewToken(TokenKind.CODE, code, now, now + lifetimes.code))  # one transaction
    return grant, code


def s256(verifier: str) -> str:
    """BASE64URL(SHA256(ASCII(code_verifier))), RFC 7636 §4.2."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _check_pkce(grant: Grant, verifier: str | None) -> None:
    """RFC 7636 §4.6; a verifier without a challenge is refused too (RFC 9700 §4.8.2, PKCE downgrade)."""
    if grant.code_challenge is None:
        if verifier is not None:
            raise invalid_grant("code_verifier sent but the authorization request had no code_challenge")
        return
    if verifier is None:
        raise invalid_grant("code_verifier missing (the authorization request used PKCE)")
    if not (43 <= len(verifier) <= 128) or not verifier.isascii():
        raise invalid_grant("code_verifier malformed (RFC 7636 §4.1)")
    if not hmac.compare_digest(s256(verifier), grant.code_challenge):
        raise invalid_grant("code_verifier does not match the code_challenge")


def redeem_code(store: GrantStore, client: OidcClient, code: str, redirect_uri: str | None,
                verifier: str | None, now: datetime) -> Grant:
    """The grant the code stands for, once; ``OAuthError`` (invalid_grant) for anything wrong."""
    outcome, grant = store.redeem(TokenKind.CODE, code, now)
    if outcome is Redemption.REUSED and grant is not None:
        store.revoke_grant(grant.grant_id, now)
        raise invalid_grant(f"authorization code replayed; grant of {grant.client_id!r} revoked", grant.grant_id)
    if outcome is not Redemption.OK or grant is None:
        raise invalid_grant("authorization code unknown, expired or revoked")
    if grant.client_id != client.client_id:
        # Another client's code: that client's grant can no longer be trusted either.
        store.revoke_grant(grant.grant_id, now)
        raise invalid_grant(f"code of {grant.client_id!r} presented by {client.client_id!r}", grant.grant_id)
    if redirect_uri != grant.redirect_uri:
        raise invalid_grant("redirect_uri differs from the authorization request's (RFC 6749 §4.1.3)")
    _check_pkce(grant, verifier)
    return grant


def rotate_refresh_token(store: GrantStore, client: OidcClient, token: str, scope: str | None,
                         now: datetime) -> Grant:
    """The grant behind a refresh token, whose use burns it (RFC 6749 §6, rotation per RFC 9700 §4.14.2).

    A ``scope`` wider than the grant's is ``invalid_scope``; a narrower one is accepted and the tokens keep
    the grant's scope, which the token response states (RFC 6749 §3.3: the server may issue another scope
    than requested and then must say so in ``scope``).
    """
    live = store.find(TokenKind.REFRESH, token, now)
    if live is not None and live.grant.client_id != client.client_id:
        # Another client holds it: it leaked. Revoked like a code presented by another client.
        store.revoke_grant(live.grant.grant_id, now)
        raise invalid_grant(f"refresh token of {live.grant.client_id!r} presented by {client.client_id!r}",
                            live.grant.grant_id)
    if live is not None and scope is not None and not set(scope.split(" ")) - {""} <= set(live.grant.scope):
        raise OAuthError("invalid_scope", "the requested scope exceeds the one originally granted")
    outcome, grant = store.redeem(TokenKind.REFRESH, token, now)
    if outcome is Redemption.REUSED and grant is not None:
        store.revoke_grant(grant.grant_id, now)
        raise invalid_grant(f"refresh token reused; grant of {grant.client_id!r} revoked", grant.grant_id)
    if outcome is not Redemption.OK or grant is None:
        raise invalid_grant("refresh token unknown, expired or revoked")
    if grant.client_id != client.client_id:  # it changed hands between find and redeem: treat as stolen
        store.revoke_grant(grant.grant_id, now)
        raise invalid_grant(f"refresh token of {grant.client_id!r} presented by {client.client_id!r}", grant.grant_id)
    return grant


def issue_tokens(store: GrantStore, client: OidcClient, grant: Grant, now: datetime,
                 lifetimes: Lifetimes) -> IssuedTokens:
    """An access token, and a refresh token when the client is registered for the refresh_token grant."""
    access = new_token()
    store.issue(TokenKind.ACCESS, access, grant.grant_id, now, now + lifetimes.access_token)
    refresh: str | None = None
    if "refresh_token" in client.grant_types:
        refresh = new_token()
        store.issue(TokenKind.REFRESH, refresh, grant.grant_id, now, now + lifetimes.refresh_token)
    return IssuedTokens(grant, access, int(lifetimes.access_token.total_seconds()), refresh)
