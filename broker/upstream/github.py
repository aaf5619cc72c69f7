"""The broker as an OAuth 2.0 client of GitHub ("Sign in with GitHub"): plain OAuth 2.0, not OpenID Connect.

GitHub issues no ID token, so who signed in is whatever GitHub's REST API says for the access token:
``start`` sends the person to GitHub's authorization endpoint (RFC 6749 §4.1.1) with a fresh ``state``
(RFC 6749 §10.12) and a PKCE S256 challenge (RFC 7636 §4.3; GitHub accepts S256 only), and ``finish`` checks
the answer (RFC 6749 §4.1.2, §4.1.2.1), exchanges the code (RFC 6749 §4.1.3, RFC 7636 §4.5), then reads
``GET /user`` and ``GET /user/emails``. GitHub's documented departures from the RFC, handled here:

* the token endpoint answers form-encoded unless asked for ``Accept: application/json``, and reports a bad,
  used or expired code, wrong client credentials and a redirect URI mismatch with HTTP 200 and an ``error``
  member (GitHub: "Troubleshooting OAuth app access token request errors"), not HTTP 400 (RFC 6749 §5.2);
* the granted ``scope`` is comma-separated (RFC 6749 §3.3 says space-separated);
* a person is the numeric ``id`` of ``/user``; ``login`` can be renamed and then taken by someone else;
* the ``email`` of ``/user`` is the public profile address, never checked by GitHub; only an address of
  ``/user/emails`` marked ``primary`` and ``verified`` is one GitHub verified as the person's.

Every failure is an ``UpstreamError`` (or ``UpstreamVerificationFailed``); nothing of urllib3 leaves here.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from broker.core import errors
from broker.core.claims import ClaimValue, claim, coerce
from broker.core.model import EmailTrust, LoginRequest, UpstreamIdentity
from broker.upstream import oidc_http
from broker.upstream.http_pool import UpstreamHttp
from broker.upstream.oauth2_settings import ISSUER, GitHubRegistration, GitHubSettings, settings_from
from broker.upstream.oidc_settings import PendingAuthorization

__all__ = ["ISSUER", "GitHubRegistration", "GitHubSettings", "GitHubUpstream", "PendingAuthorization",
           "settings_from"]

API_VERSION = "2022-11-28"
#: scopes that let a token read ``/user/emails`` (GitHub: "Scopes for OAuth apps")
EMAIL_SCOPES = frozenset({"user:email", "user"})
_CANCELLED = "The sign-in was cancelled or refused at the sign-in provider."


class GitHubUpstream:
    """Sign-in with GitHub, with the ``start``/``finish`` shape of ``OidcUpstream``. Thread-safe.

    ``session`` is the HTTP client for every request to GitHub; each request has a timeout and never follows
    a redirect (``oidc_http``).
    """

    def __init__(self, settings: GitHubSettings, session: UpstreamHttp) -> None:
        self.settings = settings
        self._session = session

    @property
    def name(self) -> str:
        return self.settings.name

    #: GitHub's OAuth answer says nothing of when the person signed in: it cannot prove a fresh sign-in, so it
    #: is never the proof of a link offer (``broker.web.link_offer``)
    proves_fresh_sign_in = False

    def start(self, now: datetime, login: LoginRequest | None = None,
              reauthenticate: bool = False) -> tuple[str, PendingAuthorization]:
        """The authorization URL (RFC 6749 §4.1.1), and what to store server-side under its ``state``.

        GitHub knows no assurance levels or forced re-authentication (``reauthenticate`` cannot be asked: see
        ``proves_fresh_sign_in``); a ``login_hint`` becomes its ``login`` parameter (the account suggested on
        GitHub's sign-in page).
        """
        pending = PendingAuthorization(
            upstream=self.settings.name,
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),  # OAuth 2.0 has no nonce; PendingAuthorization wants one
            code_verifier=secrets.token_urlsafe(64),  # 86 characters of [A-Za-z0-9_-], RFC 7636 §4.1
            redirect_uri=self.settings.redirect_uri,
            created_at=now,
        )
        url = prepare_grant_uri(
            self.settings.authorize_url,
            self.settings.client_id,
            "code",
            redirect_uri=pending.redirect_uri,
            scope=list(self.settings.scopes),
            state=pending.state,
            code_challenge=create_s256_code_challenge(pending.code_verifier),
            code_challenge_method="S256",
            **({"login": login.login_hint} if login is not None and login.login_hint else {}),
        )
        return str(url), pending

    def finish(self, pending: PendingAuthorization, params: Mapping[str, str], now: datetime) -> UpstreamIdentity:
        """Verify GitHub's answer (the callback's query ``params``) and say who signed in."""
        name = self.settings.name
        if pending.upstream != name:
            raise errors.UpstreamVerificationFailed(
                detail=f"pending authorization of {pending.upstream!r} given to {name!r}")
        if (error := params.get("error")) is not None:  # RFC 6749 §4.1.2.1; its words go to the log only
            raise errors.UpstreamError(
                _CANCELLED if error == "access_denied" else None,
                detail=f"{name} answered error {error!r:.80}: {params.get('error_description', '')!r:.200}")
        if not hmac.compare_digest(params.get("state", "").encode(), pending.state.encode()):
            raise errors.UpstreamVerificationFailed(detail="state does not match the authorization request "
                                                           "(RFC 6749 §10.12)")
        code = params.get("code")
        if not code:
            raise errors.UpstreamError(detail=f"{name} answered without a code")
        token, granted = self._exchange(pending, code)
        user = oidc_http.require_json(self._api("user", token), f"{name} API /user")
        email = self._primary_verified_email(token) if granted & EMAIL_SCOPES else None
        return self._identity(user, email, now)

    # -- the steps of finish -------------------------------------------------------------------------------

    def _exchange(self, pending: PendingAuthorization, code: str) -> tuple[str, frozenset[str]]:
        """RFC 6749 §4.1.3 with the PKCE verifier (RFC 7636 §4.5); returns (access token, granted scopes).

        GitHub takes the client credentials in the form (RFC 6749 §2.3.1 allows it) and reports errors
        with HTTP 200, so the ``error`` member is checked before anything else.
        """
        what = f"{self.settings.name} token endpoint"
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "code_verifier": pending.code_verifier,
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret,
        }
        reply = oidc_http.call(self._session, "POST", self.settings.token_url, what=what, data=form,
                               headers={"Accept": "application/json"}, timeout=self.settings.http_timeout_seconds)
        body = oidc_http.require_json(reply, what)
        if "error" in body:
            raise errors.UpstreamError(detail=f"{what}: error {str(body['error'])!r:.80}: "
                                              f"{str(body.get('error_description', ''))!r:.200}")
        access_token = oidc_http.access_token_of(body, what)
        token_type, scope = body.get("token_type"), body.get("scope")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise errors.UpstreamError(detail=f"{what}: token_type {token_type!r:.40} is not bearer (RFC 6750)")
        if scope is not None and not isinstance(scope, str):
            raise errors.UpstreamError(detail=f"{what}: scope is not text")
        granted = frozenset(re.split(r"[,\s]+", scope or "")) - {""}
        # RFC 6749 §5.1: no scope means the one requested; a GitHub App's user token has an empty one (its
        # access is the app's permissions), so an empty scope is read the same way
        return access_token, granted or frozenset(self.settings.scopes)

    def _api(self, path: str, token: str) -> oidc_http.Reply:
        """``GET {api_url}/{path}`` with the headers GitHub's REST API documents."""
        return oidc_http.call(self._session, "GET", self._api_url(path),
                              what=f"{self.name} API /{path}", headers=_api_headers(token),
                              timeout=self.settings.http_timeout_seconds)

    def _api_url(self, path: str) -> str:
        return f"{self.settings.api_url.rstrip('/')}/{path}"

    def _primary_verified_email(self, token: str) -> str | None:
        """The one address of ``/user/emails`` that is both ``primary`` and ``verified`` (else None).

        ``/user/emails`` answers a JSON array, which ``oidc_http.call`` does not parse (it reads objects).
        """
        what = f"{self.name} API /user/emails"
        addresses = _json_array(self._session, self._api_url("user/emails"), token, what,
                                self.settings.http_timeout_seconds)
        chosen = [entry["email"] for entry in addresses
                  if isinstance(entry, dict) and entry.get("primary") is True and entry.get("verified") is True
                  and isinstance(entry.get("email"), str) and entry["email"].strip()]
        return chosen[0] if len(chosen) == 1 else None  # two primaries: GitHub is confused, trust neither

    def _identity(self, user: Mapping[str, Any], email: str | None, now: datetime) -> UpstreamIdentity:
        """Subject: the numeric id (GitHub: a ``login`` can change and be reused, the id cannot)."""
        user_id = user.get("id")
        if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id <= 0:
            raise errors.UpstreamVerificationFailed(
                detail=f"{self.name} API /user: id {str(user_id)!r:.40} is not a positive integer")
        raw: dict[str, object] = {"preferred_username": user.get("login"), "name": user.get("name")}
        if email is not None:  # never the ``email`` of /user: the unverified public profile address
            raw |= {"email": email, "email_verified": True}
        claims: dict[str, ClaimValue] = {}
        for claim_name, value in raw.items():
            coerced = coerce(claim(claim_name), value) if isinstance(value, str | bool) else None
            if coerced is not None:
                claims[claim_name] = coerced
        return UpstreamIdentity(
            upstream=self.settings.name,
            issuer=self.settings.issuer,
            subject=str(user_id),
            claims=claims,
            acr=None,
            auth_time=now,
            email_trust=EmailTrust.VERIFIED if "email" in claims else EmailTrust.UNVERIFIED,
        )


def _json_array(session: UpstreamHttp, url: str, token: str, what: str, timeout: float) -> list[Any]:
    """``GET`` a JSON array with ``oidc_http``'s rules: timeout, no redirects, bounded body, broker errors."""
    answer = oidc_http.fetch(session, "GET", url, what=what, headers=_api_headers(token), timeout=timeout)
    if not 200 <= answer.status < 300:
        raise errors.UpstreamError(detail=f"{what}: HTTP {answer.status}")
    try:
        value = json.loads(answer.body)
    except (ValueError, RecursionError) as exc:
        raise errors.UpstreamError(detail=f"{what}: the answer is not JSON") from exc
    if not isinstance(value, list):
        raise errors.UpstreamError(detail=f"{what}: the answer is not a JSON array")
    return value


def _api_headers(token: str) -> dict[str, str]:
    """GitHub REST API: bearer token (RFC 6750 §2.1), its media type and a pinned API version."""
    return {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION}
