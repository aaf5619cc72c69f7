"""What the OIDC upstream adapter is configured with, and what it keeps between leaving and coming back.

``PendingAuthorization`` is the server-side half of one authorization request: the caller stores it keyed by
``state`` (RFC 6749 §10.12) and hands it back to ``OidcUpstream.finish``; nothing of it travels in the browser
except ``state`` itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from urllib.parse import urlsplit

from broker.core import errors
from broker.upstream.quirks import STANDARD, StandardQuirks

DEFAULT_SCOPES = ("openid", "email", "profile")
DEFAULT_ALGS = ("RS256", "ES256", "PS256")
#: asymmetric JWS algorithms the adapter can verify (RFC 7518 §3); "none" and HS* are never among them
SUPPORTED_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})
_NO_PARAMS: Mapping[str, str] = MappingProxyType({})
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class OidcUpstreamSettings:
    """One upstream OpenID provider (usually built by ``presets.settings_for``).

    ``issuer`` is compared exactly, character for character (OIDC Discovery 1.0 §4.3, OIDC Core 1.0
    §3.1.3.7 step 2). ``allowed_algs`` may only name asymmetric algorithms: "none" and HMAC algorithms are
    refused here, so the JWKS's public keys can never be misused as HMAC secrets. ``discovery_url``, when
    set, is fetched instead of ``{issuer}/.well-known/openid-configuration`` (Microsoft's multi-tenant
    ``common`` document lives there but names the ``{tenantid}`` template as its issuer); the document must
    still name ``issuer`` exactly.
    """

    name: str
    display_name: str
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    allowed_algs: tuple[str, ...] = DEFAULT_ALGS
    extra_authorization_params: Mapping[str, str] = field(default_factory=lambda: _NO_PARAMS, hash=False)
    clock_skew_seconds: int = 60
    preset: str | None = None
    #: discovery document and JWKS are fetched again after this long
    metadata_ttl_seconds: int = 3600
    #: an unknown ``kid`` makes the JWKS be fetched again at most this often
    jwks_refetch_interval_seconds: int = 60
    http_timeout_seconds: float = 10.0
    #: how this provider departs from plain OpenID Connect (a preset's subclass of StandardQuirks)
    quirks: StandardQuirks = field(default=STANDARD, compare=False)
    #: where the discovery document is when it is not under the issuer (None: OIDC Discovery 1.0 §4)
    discovery_url: str | None = None

    def __post_init__(self) -> None:
        if not _secure_url(self.issuer):
            raise ValueError(f"issuer {self.issuer!r} must be an https URL without query or fragment "
                             "(OIDC Core 1.0 §2; plain http only on the loopback interface)")
        if self.discovery_url is not None and not _secure_url(self.discovery_url):
            raise ValueError(f"discovery_url {self.discovery_url!r} must be an https URL without query or fragment "
                             "(plain http only on the loopback interface)")
        if "openid" not in self.scopes:
            raise ValueError("scopes must include 'openid' (OIDC Core 1.0 §3.1.2.1)")
        refused = [alg for alg in self.allowed_algs if alg not in SUPPORTED_ALGS]
        if refused or not self.allowed_algs:
            raise ValueError(f"allowed_algs may only name asymmetric algorithms of {sorted(SUPPORTED_ALGS)}, "
                             f"not {refused}")
        reserved = {"response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
                    "code_challenge_method"} & set(self.extra_authorization_params)
        if reserved:
            raise ValueError(f"extra_authorization_params must not set {sorted(reserved)}")
        if self.clock_skew_seconds < 0 or self.clock_skew_seconds > 600:
            raise ValueError("clock_skew_seconds must be between 0 and 600")
        if self.http_timeout_seconds <= 0 or self.metadata_ttl_seconds < 0 or self.jwks_refetch_interval_seconds < 0:
            raise ValueError("http_timeout_seconds must be positive, the cache intervals not negative")


def _secure_url(url: str) -> bool:
    """https (plain http only on the loopback interface), a host, no query, no fragment."""
    parts = urlsplit(url)
    secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)
    return secure and bool(parts.hostname) and not parts.query and not parts.fragment


@dataclass(frozen=True)
class PendingAuthorization:
    """One authorization request on its way: stored server-side by the caller, keyed by ``state``."""

    upstream: str
    state: str
    nonce: str
    code_verifier: str = field(repr=False)
    redirect_uri: str
    created_at: datetime
    #: the ``max_age`` sent (OIDC Core §3.1.2.1): the ID token must then carry an ``auth_time`` that recent
    max_age: int | None = None

    def to_json(self) -> str:
        return json.dumps({
            "upstream": self.upstream,
            "state": self.state,
            "nonce": self.nonce,
            "code_verifier": self.code_verifier,
            "redirect_uri": self.redirect_uri,
            "created_at": self.created_at.isoformat(),
            "max_age": self.max_age,
        })

    @classmethod
    def from_json(cls, text: str) -> PendingAuthorization:
        """Read back ``to_json``; ``LoginStateInvalid`` when the text is not one."""
        try:
            raw = json.loads(text)
            created_at = datetime.fromisoformat(raw["created_at"])
            fields = {k: raw[k] for k in ("upstream", "state", "nonce", "code_verifier", "redirect_uri")}
        except (TypeError, ValueError, KeyError, RecursionError) as exc:
            raise errors.LoginStateInvalid(detail=f"unreadable pending OIDC authorization: {exc!r}") from exc
        max_age = raw.get("max_age")
        if not all(isinstance(v, str) for v in fields.values()) or created_at.tzinfo is None or not (
                max_age is None or (isinstance(max_age, int) and not isinstance(max_age, bool) and max_age >= 0)):
            raise errors.LoginStateInvalid(detail="pending OIDC authorization has fields of the wrong type")
        return cls(created_at=created_at, max_age=max_age, **fields)
