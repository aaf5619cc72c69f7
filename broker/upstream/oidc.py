"""The broker as an OpenID Connect relying party of an upstream provider (authorization code flow).

``start`` sends the person to the provider (OIDC Core 1.0 §3.1.2.1) with a fresh ``state`` (RFC 6749 §10.12),
``nonce`` (OIDC Core 1.0 §3.1.2.1) and PKCE S256 challenge (RFC 7636 §4). ``finish`` checks the answer and
turns it into an ``UpstreamIdentity``: error response (RFC 6749 §4.1.2.1), ``state``, the ``iss`` parameter
(RFC 9207 §2.4), the code exchange (RFC 6749 §4.1.3, RFC 7636 §4.5), the ID token (OIDC Core 1.0 §3.1.3.7,
in ``oidc_tokens``) and UserInfo (OIDC Core 1.0 §5.3.2); ``verify_answer`` adds the provider's session id, the
ID token's ``sid`` (Back-Channel Logout 1.0 §2.1), for its logout tokens (``session_state``). Every failure is an
``UpstreamError`` (or its subclass ``UpstreamVerificationFailed``); nothing of authlib, joserfc or urllib3 leaves
this package.
"""

from __future__ import annotations

import base64
import hmac
import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from broker.core import errors
from broker.core.claims import ClaimValue, coerce, from_upstream_oidc_name
from broker.core.model import EmailTrust, LoginRequest, UpstreamIdentity
from broker.core.protocol_ports import VerifiedAnswer
from broker.core.upstream_logout_tokens import MAX_UPSTREAM_SID, UPSTREAM_SID, recordable_sid
from broker.upstream import oidc_http
from broker.upstream.http_pool import UpstreamHttp
from broker.upstream.oidc_metadata import ProviderCache, ProviderMetadata, VerificationKey
from broker.upstream.oidc_settings import OidcUpstreamSettings, PendingAuthorization
from broker.upstream.oidc_tokens import IdTokenExpectations, validate_id_token

__all__ = ["OidcUpstream", "OidcUpstreamSettings", "PendingAuthorization"]

#: client authentication methods this adapter can use, in order of preference (RFC 6749 §2.3.1)
CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
_CANCELLED = "The sign-in was cancelled or refused at the sign-in provider."
#: RFC 6749 §4.1.2.1 access_denied, and Apple's own code for a person pressing Cancel
CANCELLED_ERRORS = frozenset({"access_denied", "user_cancelled_authorize"})
log = logging.getLogger(__name__)


def downstream_wishes(login: LoginRequest | None, reauthenticate: bool = False) -> dict[str, str]:
    """The authorization parameters that pass on what the downstream asked (see ``OidcUpstream.start``); with
    ``reauthenticate``, ``prompt=login`` and ``max_age=0`` whatever it asked."""
    if reauthenticate:
        return {**downstream_wishes(login), "prompt": "login", "max_age": "0"}
    if login is None:
        return {}
    wishes: dict[str, str] = {}
    if login.login_hint:
        wishes["login_hint"] = login.login_hint
    acr = list(dict.fromkeys([*login.acr_values, *login.preferred_acr]))
    if acr:
        wishes["acr_values"] = " ".join(acr)
    if login.force_authn:
        wishes["prompt"] = "login"
    if login.max_age is not None:
        wishes["max_age"] = str(login.max_age)
    return wishes


class OidcUpstream:
    """One upstream OpenID provider. Thread-safe; share one per upstream.

    ``session`` is the HTTP client for every request to the provider (the swap-in point for tests and for
    proxies); the adapter sets a timeout on each request and never follows redirects.
    """

    def __init__(self, settings: OidcUpstreamSettings, session: UpstreamHttp) -> None:
        self.settings = settings
        self._session = session
        self._provider = ProviderCache(settings, session)

    #: the ID token's ``auth_time`` shows whether the person signed in again (``start(reauthenticate=True)``)
    proves_fresh_sign_in = True

    @property
    def name(self) -> str:
        return self.settings.name

    def signing_key(self, kid: str | None, alg: str, now: datetime) -> VerificationKey:
        """The provider's key for a JWS it signed (``kid``, ``alg``), from the JWKS cache its ID tokens use
        (``ProviderCache.key_for``): the back-channel logout tokens (``oidc_backchannel``) are checked with it."""
        return self._provider.key_for(kid, alg, now)

    def start(self, now: datetime, login: LoginRequest | None = None,
              reauthenticate: bool = False) -> tuple[str, PendingAuthorization]:
        """The authorization URL to send the person to, and what to store server-side under its ``state``.

        The downstream's wishes travel upstream as OIDC Core §3.1.2.1 parameters: ``login_hint``,
        ``acr_values`` (required and preferred), ``prompt=login`` for forced re-authentication and
        ``max_age``. The provider's answer is then checked, never assumed (``acr`` in the ID token, and
        ``auth_time`` against ``max_age``). ``reauthenticate`` (a link proof) asks ``prompt=login`` with
        ``max_age=0``: the provider must sign the person in again, not reuse its session.
        """
        wishes = downstream_wishes(login, reauthenticate)
        metadata = self._provider.metadata(now)
        pending = PendingAuthorization(
            upstream=self.settings.name,
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(64),  # 86 characters of [A-Za-z0-9_-], RFC 7636 §4.1
            redirect_uri=self.settings.redirect_uri,
            created_at=now,
            max_age=int(wishes["max_age"]) if "max_age" in wishes else None,
        )
        url = prepare_grant_uri(
            metadata.authorization_endpoint,
            self.settings.client_id,
            "code",
            redirect_uri=pending.redirect_uri,
            scope=list(self.settings.scopes),
            state=pending.state,
            nonce=pending.nonce,
            code_challenge=create_s256_code_challenge(pending.code_verifier),
            code_challenge_method="S256",
            **{**self.settings.extra_authorization_params, **self.settings.quirks.authorization_params(),
               **wishes},
        )
        return str(url), pending

    def finish(self, pending: PendingAuthorization, params: Mapping[str, str], now: datetime) -> UpstreamIdentity:
        """Verify the provider's answer (the callback's query ``params``) and say who signed in."""
        return self.verify_answer(pending, params, now).identity

    def verify_answer(self, pending: PendingAuthorization, params: Mapping[str, str],
                      now: datetime) -> VerifiedAnswer:
        """``finish``, with the provider's session as ``session_state`` keeps it (``OAuthUpstreams.finish``)."""
        if pending.upstream != self.settings.name:
            raise errors.UpstreamVerificationFailed(
                detail=f"pending authorization of {pending.upstream!r} given to {self.settings.name!r}")
        self._check_error(params)
        state = params.get("state", "")
        if not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise errors.UpstreamVerificationFailed(detail="state does not match the authorization request "
                                                           "(RFC 6749 §10.12)")
        metadata = self._provider.metadata(now)
        self._check_iss(params, metadata)
        code = params.get("code")
        if not code:
            raise errors.UpstreamError(detail=f"{self.settings.name} answered without a code")
        access_token, id_token = self._exchange(metadata, pending, code, now)
        quirks = self.settings.quirks
        expected = IdTokenExpectations(
            issuer=self.settings.issuer, client_id=self.settings.client_id, nonce=pending.nonce,
            allowed_algs=self.settings.allowed_algs, now=now,
            clock_skew=timedelta(seconds=self.settings.clock_skew_seconds), access_token=access_token,
            issuer_of=lambda claims: quirks.expected_issuer(self.settings.issuer, claims), max_age=pending.max_age,
        )
        id_claims = validate_id_token(id_token, expected, lambda kid, alg: self._provider.key_for(kid, alg, now))
        quirks.check_claims(id_claims)
        userinfo = self._userinfo(metadata, access_token, id_claims["sub"])
        return VerifiedAnswer(self._identity(id_claims, userinfo, params, now), session_state(self.name, id_claims))

    # -- the steps of finish -------------------------------------------------------------------------------

    def _check_error(self, params: Mapping[str, str]) -> None:
        """RFC 6749 §4.1.2.1 / OIDC Core 1.0 §3.1.2.6: the provider says no; its words go to the log only."""
        error = params.get("error")
        if error is None:
            return
        description = params.get("error_description", "")
        raise errors.UpstreamError(
            _CANCELLED if error in CANCELLED_ERRORS else None,
            detail=f"{self.settings.name} answered error {error!r:.80}: {description!r:.200}",
        )

    def _check_iss(self, params: Mapping[str, str], metadata: ProviderMetadata) -> None:
        """RFC 9207 §2.4: ``iss``, when sent, must be the issuer; a provider that promises it must send it."""
        iss = params.get("iss")
        if iss is None:
            if metadata.iss_parameter_supported:
                raise errors.UpstreamVerificationFailed(
                    detail="the authorization response lacks the iss parameter its provider promises (RFC 9207)")
            return
        if not self.settings.quirks.iss_parameter_ok(self.settings.issuer, iss):
            raise errors.UpstreamVerificationFailed(
                detail=f"iss parameter {iss!r:.200} is not {self.settings.issuer!r} (RFC 9207: mix-up)")

    def _exchange(self, metadata: ProviderMetadata, pending: PendingAuthorization, code: str,
                  now: datetime) -> tuple[str, str]:
        """RFC 6749 §4.1.3 with the PKCE verifier (RFC 7636 §4.5); returns (access token, raw ID token)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "code_verifier": pending.code_verifier,
        }
        headers = {"Accept": "application/json"}
        secret = self.settings.quirks.client_secret(self.settings.client_secret, now)
        method = next((m for m in CLIENT_AUTH_METHODS if m in metadata.token_endpoint_auth_methods), None)
        if method == "client_secret_basic":
            # RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined and base64-encoded
            pair = f"{quote(self.settings.client_id, safe='')}:{quote(secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
        elif method == "client_secret_post":
            form |= {"client_id": self.settings.client_id, "client_secret": secret}
        else:
            raise errors.UpstreamError(
                detail=f"{self.settings.name} token endpoint allows {list(metadata.token_endpoint_auth_methods)}"
                       f", none of {list(CLIENT_AUTH_METHODS)}")
        what = f"{self.settings.name} token endpoint"
        reply = oidc_http.call(self._session, "POST", metadata.token_endpoint, what=what, data=form,
                               headers=headers, timeout=self.settings.http_timeout_seconds)
        body = oidc_http.require_json(reply, what)
        access_token = oidc_http.access_token_of(body, what)
        token_type, id_token = body.get("token_type"), body.get("id_token")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise errors.UpstreamError(detail=f"{what}: token_type {token_type!r:.40} is not Bearer")
        if not isinstance(id_token, str) or not id_token:
            raise errors.UpstreamVerificationFailed(detail=f"{what}: no id_token (was 'openid' in the scope?)")
        return access_token, id_token

    def _userinfo(self, metadata: ProviderMetadata, access_token: str, sub: str) -> Mapping[str, Any]:
        """OIDC Core 1.0 §5.3: the profile; its ``sub`` must be the ID token's (§5.3.2) or it is refused."""
        if metadata.userinfo_endpoint is None:
            return {}
        what = f"{self.settings.name} UserInfo"
        reply = oidc_http.call(self._session, "GET", metadata.userinfo_endpoint, what=what,
                               headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
                               timeout=self.settings.http_timeout_seconds)
        userinfo = oidc_http.require_json(reply, what)
        if userinfo.get("sub") != sub:
            raise errors.UpstreamVerificationFailed(
                detail=f"{what}: sub {str(userinfo.get('sub'))!r:.100} is not the ID token's (OIDC Core §5.3.2)")
        return userinfo

    def _identity(self, id_claims: Mapping[str, Any], userinfo: Mapping[str, Any], params: Mapping[str, str],
                  now: datetime) -> UpstreamIdentity:
        """The provider's profile (see ``quirks``) in the vocabulary; names outside it are dropped."""
        quirks = self.settings.quirks
        merged = quirks.profile(id_claims, userinfo, params)
        claims: dict[str, ClaimValue] = {}
        for oidc_name, value in merged.items():
            definition = from_upstream_oidc_name(oidc_name)  # never a claim the broker assigns (roles)
            coerced = coerce(definition, value) if definition is not None else None
            if definition is not None and coerced is not None:
                claims[definition.name] = coerced
        trust = quirks.email_trust(merged)
        if trust is EmailTrust.PRIVATE_RELAY and "email" in claims:
            claims["email_relay"] = True  # kept with the address; apps that ask learn it (core.email_relay)
        acr = id_claims.get("acr")
        amr = id_claims.get("amr")
        issuer, subject = quirks.identity_key(self.settings.issuer, id_claims)
        return UpstreamIdentity(
            upstream=self.settings.name,
            issuer=issuer,
            subject=subject,
            claims=claims,
            acr=acr if isinstance(acr, str) else None,
            auth_time=_auth_time(id_claims.get("auth_time"), now),
            amr=tuple(a for a in amr if isinstance(a, str)) if isinstance(amr, list) else (),
            email_trust=trust,
            sent_once=quirks.sent_once(),
        )


def session_state(upstream: str, id_claims: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The provider's session id, the ID token's ``sid`` (Back-Channel Logout 1.0 §2.1, §2.4), as the
    ``UPSTREAM_SID`` pair of ``VerifiedAnswer.upstream_state``: the login records it with the SSO session, and a
    logout token naming it ends that session only (``broker.journeys.upstream_backchannel``). A pair rather than a
    field of its own because the journey carries ``upstream_state`` through every step of a login (step-up,
    enrolment) into the session already, as it does a SAML IdP's NameID and SessionIndex.

    A ``sid`` that is no short printable string (``recordable_sid``) is not kept, and the sign-in still counts: the
    session is then ended as one that predates recorded sids (every session of the person from this provider)."""
    sid = id_claims.get("sid")
    if sid is None:
        return ()
    if not recordable_sid(sid):
        log.warning("upstream %s: the ID token's sid is not kept (not a string of 1-%d printable characters)",
                    upstream, MAX_UPSTREAM_SID)
        return ()
    return ((UPSTREAM_SID, sid),)


def _auth_time(value: object, now: datetime) -> datetime:
    """The ``auth_time`` claim (a number: ``oidc_tokens`` refused anything else), else the time of the answer."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return now
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise errors.UpstreamVerificationFailed(detail=f"ID token: auth_time {value!r:.40} is not a time") from exc
