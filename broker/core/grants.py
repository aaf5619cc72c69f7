"""Authorizations held by OpenID Connect clients, and the tokens issued from them.

A ``Grant`` is one sign-in released to one client (RFC 6749 §1.3.1 authorization grant): who signed in,
how (auth_time, acr, amr, the SSO session id ``sid``), and which claims the client may read. Every token
the broker hands out belongs to exactly one grant, so revoking the grant revokes its whole family: a
replayed authorization code revokes what the code produced (RFC 6749 §4.1.2), a reused refresh token
revokes the rotated chain (OAuth 2.0 Security BCP, RFC 9700 §4.14.2).

Tokens are opaque random strings; stores keep only their SHA-256 (a stolen table yields no usable token).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from broker.core.claims import ClaimValue


class TokenKind(Enum):
    CODE = "code"
    ACCESS = "access"
    REFRESH = "refresh"


class Redemption(Enum):
    """What consuming a single-use token found."""

    OK = "ok"  # it was unused and valid, and is now used
    REUSED = "reused"  # it had been used before: a replay
    INVALID = "invalid"  # unknown, expired, of another kind, or its grant is revoked


def new_token() -> str:
    """256 bits from the OS's CSPRNG, URL-safe (RFC 6749 §10.10: guessing must be infeasible)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Grant:
    grant_id: str
    client_id: str
    account_id: str
    #: the scope granted, space-separated in the order requested (RFC 6749 §3.3)
    scope: tuple[str, ...]
    #: claim names the client may receive (``core.release.releasable_claims``, narrowed by consent)
    claims: frozenset[str]
    redirect_uri: str
    nonce: str | None
    #: the S256 PKCE challenge (RFC 7636 §4.2), or None when the client sent none
    code_challenge: str | None
    auth_time: datetime
    acr: str | None
    amr: tuple[str, ...]
    sid: str
    upstream: str
    created_at: datetime
    #: claims the request marked essential for the ID token (OIDC Core §5.5)
    id_token_claims: frozenset[str] = frozenset()
    #: the claim values released at the sign-in (issue 21): the code's ID token and UserInfo answer from them, so
    #: neither reads the account's identities again; a refresh recomputes them (OIDC Core §12.2). Personal data:
    #: never in ``to_json`` (a store seals them apart, ``broker.storage.grants``), never in a repr. None: not kept
    #: (a grant stored before, or whose sealed values no longer open): read from the unified profile at use
    released: Mapping[str, ClaimValue] | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> str:
        return json.dumps({
            "grant_id": self.grant_id, "client_id": self.client_id, "account_id": self.account_id,
            "scope": list(self.scope), "claims": sorted(self.claims), "redirect_uri": self.redirect_uri,
            "nonce": self.nonce, "code_challenge": self.code_challenge, "auth_time": self.auth_time.isoformat(),
            "acr": self.acr, "amr": list(self.amr), "sid": self.sid, "upstream": self.upstream,
            "created_at": self.created_at.isoformat(), "id_token_claims": sorted(self.id_token_claims),
        })

    @classmethod
    def from_json(cls, text: str) -> Grant:
        """Read back ``to_json``; ``ValueError`` for anything else."""
        try:
            raw = json.loads(text)
            grant = cls(
                grant_id=str(raw["grant_id"]), client_id=str(raw["client_id"]), account_id=str(raw["account_id"]),
                scope=tuple(str(s) for s in raw["scope"]), claims=frozenset(str(c) for c in raw["claims"]),
                redirect_uri=str(raw["redirect_uri"]), nonce=raw["nonce"], code_challenge=raw["code_challenge"],
                auth_time=datetime.fromisoformat(raw["auth_time"]), acr=raw["acr"],
                amr=tuple(str(a) for a in raw["amr"]), sid=str(raw["sid"]), upstream=str(raw["upstream"]),
                created_at=datetime.fromisoformat(raw["created_at"]),
                id_token_claims=frozenset(str(c) for c in raw.get("id_token_claims", [])),
            )
        except (KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise ValueError(f"not a stored grant: {type(exc).__name__}") from exc
        if grant.auth_time.tzinfo is None or grant.created_at.tzinfo is None:
            raise ValueError("grant times must be timezone-aware")
        return grant


@dataclass(frozen=True)
class NewToken:
    """A token to store with its grant (``GrantStore.create_grant``); in clear until the store hashes it."""

    kind: TokenKind
    token: str = field(repr=False)
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class TokenRecord:
    """A live token as a store finds it (never the token itself: only its hash is stored)."""

    kind: TokenKind
    grant: Grant
    expires_at: datetime
    issued_at: datetime
