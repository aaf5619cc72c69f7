"""An upstream provider's discovery document and signing keys, fetched and cached.

Discovery follows OpenID Connect Discovery 1.0 §4: the document comes from
``{issuer}/.well-known/openid-configuration`` (or from the settings' ``discovery_url``, for a provider that
publishes it elsewhere, as Microsoft's multi-tenant endpoints do) and its ``issuer`` must equal the configured
issuer exactly (§4.3), which keeps one provider from impersonating another. Both the document and the JWKS
are cached for ``metadata_ttl_seconds``. A token signed with a ``kid`` the cached JWKS lacks makes the JWKS
be fetched again (key rotation, OIDC Core 1.0 §10.1.1), but at most once per ``jwks_refetch_interval_seconds``
so forged tokens cannot make the broker hammer the provider. Times come from the caller: nothing here reads
the clock.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from broker.core import errors
from broker.upstream import oidc_http
from broker.upstream.http_pool import UpstreamHttp
from broker.upstream.oidc_settings import OidcUpstreamSettings

VerificationKey = RSAKey | ECKey
_KEY_TYPES: Mapping[str, type[RSAKey] | type[ECKey]] = {"RSA": RSAKey, "EC": ECKey}
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
#: private key members (RFC 7518 §6.2.2, §6.3.2): a JWKS should not carry them; if it does, they are ignored
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth"})


@dataclass(frozen=True)
class ProviderMetadata:
    """The parts of an OpenID Provider's metadata the adapter uses (OIDC Discovery 1.0 §3, RFC 9207 §3)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    token_endpoint_auth_methods: tuple[str, ...]
    iss_parameter_supported: bool


def parse_metadata(document: Mapping[str, Any], expected_issuer: str) -> ProviderMetadata:
    """Check and read a discovery document; ``UpstreamVerificationFailed`` when it is for another issuer."""
    if document.get("issuer") != expected_issuer:
        raise errors.UpstreamVerificationFailed(
            detail=f"discovery document names issuer {str(document.get('issuer'))!r:.200}, "
                   f"expected {expected_issuer!r} (OIDC Discovery §4.3)")
    endpoints = {name: _endpoint(document, name, required=True)
                 for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")}
    methods = document.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])  # §3 default
    return ProviderMetadata(
        issuer=expected_issuer,
        authorization_endpoint=str(endpoints["authorization_endpoint"]),
        token_endpoint=str(endpoints["token_endpoint"]),
        jwks_uri=str(endpoints["jwks_uri"]),
        userinfo_endpoint=_endpoint(document, "userinfo_endpoint", required=False),
        token_endpoint_auth_methods=tuple(m for m in methods if isinstance(m, str)) if isinstance(methods, list)
        else (),
        iss_parameter_supported=document.get("authorization_response_iss_parameter_supported") is True,
    )


def parse_jwks(document: Mapping[str, Any]) -> tuple[VerificationKey, ...]:
    """The RSA and EC signature keys of a JWK Set (RFC 7517 §5); other keys are skipped, never guessed at."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise errors.UpstreamError(detail="JWKS has no 'keys' list")
    keys: list[VerificationKey] = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        key_type = _KEY_TYPES.get(str(entry.get("kty")))
        if key_type is None:
            continue  # "oct" keys in particular: HMAC secrets never come from a JWKS
        try:
            keys.append(key_type.import_key({k: v for k, v in entry.items() if k not in _PRIVATE_MEMBERS}))
        except (JoseError, ValueError, TypeError):
            continue
    return tuple(keys)


def select_key(keys: Sequence[VerificationKey], kid: str | None, alg: str) -> VerificationKey | None:
    """The key for a JWS header: same ``kid``, a key type that fits ``alg``, not restricted to another alg.

    Without a ``kid`` only an unambiguous single candidate is used (OIDC Core 1.0 §10.1).
    """
    wanted = "EC" if alg.startswith("ES") else "RSA"
    fitting = [k for k in keys if k.key_type == wanted and k.get("alg") in (None, alg)]
    if kid is not None:
        return next((k for k in fitting if k.kid == kid), None)
    return fitting[0] if len(fitting) == 1 else None


class ProviderCache:
    """Discovery document and JWKS of one upstream; safe to share between threads."""

    def __init__(self, settings: OidcUpstreamSettings, session: UpstreamHttp) -> None:
        self._settings = settings
        self._session = session
        self._lock = threading.Lock()
        self._metadata: tuple[ProviderMetadata, datetime] | None = None
        self._jwks: tuple[tuple[VerificationKey, ...], datetime] | None = None
        self._last_forced_refetch: datetime | None = None

    @property
    def _ttl(self) -> timedelta:
        return timedelta(seconds=self._settings.metadata_ttl_seconds)

    def metadata(self, now: datetime) -> ProviderMetadata:
        with self._lock:
            cached = self._metadata
        if cached is not None and not _expired(cached[1], self._ttl, now):
            return cached[0]
        url = self._settings.discovery_url or (
            self._settings.issuer.rstrip("/") + "/.well-known/openid-configuration")  # Discovery §4
        reply = self._get(url, "discovery")
        metadata = parse_metadata(oidc_http.require_json(reply, "discovery"), self._settings.issuer)
        with self._lock:
            self._metadata = (metadata, now)
        return metadata

    def key_for(self, kid: str | None, alg: str, now: datetime) -> VerificationKey:
        """The provider's key for this ``kid``/``alg``; refetches the JWKS once for a ``kid`` it lacks."""
        with self._lock:
            cached = self._jwks
        fresh = cached is None or _expired(cached[1], self._ttl, now)
        keys = self._fetch(now) if fresh or cached is None else cached[0]
        found = select_key(keys, kid, alg)
        unknown_kid = kid is not None and all(k.kid != kid for k in keys)
        if found is None and unknown_kid and not fresh and self._may_refetch(now):
            found = select_key(self._fetch(now), kid, alg)
        if found is None:
            raise errors.UpstreamVerificationFailed(
                detail=f"no {alg} key with kid {kid!r:.80} in the JWKS of {self._settings.issuer}")
        return found

    def _may_refetch(self, now: datetime) -> bool:
        interval = timedelta(seconds=self._settings.jwks_refetch_interval_seconds)
        with self._lock:
            last = self._last_forced_refetch
            if last is not None and now < last + interval:
                return False
            self._last_forced_refetch = now
            return True

    def _fetch(self, now: datetime) -> tuple[VerificationKey, ...]:
        reply = self._get(self.metadata(now).jwks_uri, "JWKS")
        keys = parse_jwks(oidc_http.require_json(reply, "JWKS"))
        with self._lock:
            self._jwks = (keys, now)
        return keys

    def _get(self, url: str, what: str) -> oidc_http.Reply:
        return oidc_http.call(self._session, "GET", url, what=f"{self._settings.name} {what}",
                              timeout=self._settings.http_timeout_seconds,
                              headers={"Accept": "application/json"})


def _expired(fetched_at: datetime, ttl: timedelta, now: datetime) -> bool:
    return now >= fetched_at + ttl or now < fetched_at - ttl


def _endpoint(document: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = document.get(name)
    if value is None and not required:
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    secure = parts is not None and (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK))
    if parts is None or not secure or not parts.hostname or parts.fragment:
        raise errors.UpstreamError(detail=f"discovery document: {name} {str(value)!r:.200} is not an https URL")
    return str(value)
