"""A simulated GitHub for tests: the OAuth web application flow and the two REST API calls a sign-in makes.

One Flask app serves the authorization endpoint, the token endpoint and the API (``GET /user``,
``GET /user/emails``) under configurable paths, so an adapter pointed at it (``authorize_url``, ``token_url``,
``api_url``) cannot tell it from GitHub in the ways that matter to a sign-in. It follows GitHub's
documentation ("Authorizing OAuth apps", "Troubleshooting OAuth app access token request errors", the REST
API's "Users" and "Emails" pages) where it says something, and its own choice where it is silent:

* authorization: auto-approves ``signed_in`` (or refuses with ``error=access_denied`` when ``approve`` is
  False), redirects with ``code`` and ``state``; a PKCE challenge must use S256; codes live 10 minutes;
* token: client credentials in the form; the answer is JSON only with ``Accept: application/json``, else
  form-encoded; every error is HTTP 200 with an ``error`` member (``incorrect_client_credentials``,
  ``bad_verification_code`` for a wrong, expired or already used code, ``redirect_uri_mismatch``); a
  code is spent by its first use, whatever the outcome; a failed PKCE check is ``bad_verification_code``
  here (GitHub does not document its error for that); the granted ``scope`` is comma-separated;
* API: ``Authorization: Bearer`` (or GitHub's older ``token``) else 401; a ``User-Agent`` is required (else
  403); ``/user`` reports the public profile ``email``; ``/user/emails`` needs the ``user:email`` or
  ``user`` scope (else 404, as GitHub answers for a resource the token may not see).

``mischief`` breaks one rule at a time for negative tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, jsonify, redirect, request
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import Headers

CODE_LIFETIME_SECONDS = 600
API_VERSIONS = frozenset({"2022-11-28"})
_HTML = "<!DOCTYPE html><html><head><title>GitHub</title></head><body>Sign in to GitHub</body></html>"


@dataclass(frozen=True)
class GitHubEmail:
    """One entry of ``/user/emails``."""

    email: str
    primary: bool = False
    verified: bool = False
    visibility: str | None = None


@dataclass(frozen=True)
class GitHubUser:
    """A GitHub account. ``email`` is the public profile address: whatever the person typed, never verified."""

    id: int
    login: str
    name: str | None = None
    email: str | None = None
    emails: tuple[GitHubEmail, ...] = ()


@dataclass
class Mischief:
    """Ways to break the rules, one per negative test."""

    #: merged into the token endpoint's successful answer (e.g. ``{"token_type": "mac"}``); None removes a member
    token_overrides: Mapping[str, object] = field(default_factory=dict)
    #: merged into ``/user`` (e.g. ``{"id": "583231"}``)
    user_overrides: Mapping[str, object] = field(default_factory=dict)
    #: endpoints ("token", "user", "emails") that answer HTTP 200 with an HTML page
    html: frozenset[str] = frozenset()
    #: the token endpoint answers form-encoded even when asked for JSON
    ignore_accept: bool = False
    #: the API answers 401 "Bad credentials" for every token (revoked right after it was issued)
    reject_tokens: bool = False


@dataclass(frozen=True)
class _Grant:
    user_id: int
    scopes: tuple[str, ...]
    redirect_uri: str | None
    code_challenge: str | None
    expires_at: float


class GitHubSim:
    """The simulated GitHub; serve ``app`` (``tests.peers.servers.serve``) and point the adapter at it."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        redirect_uris: tuple[str, ...],
        users: tuple[GitHubUser, ...],
        authorize_path: str = "/login/oauth/authorize",
        token_path: str = "/login/oauth/access_token",
        api_prefix: str = "/api/v3",
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = redirect_uris
        self.users: dict[int, GitHubUser] = {u.id: u for u in users}
        #: the account that approves every authorization request (None: nobody is signed in at GitHub)
        self.signed_in: int | None = users[0].id if users else None
        #: False: the person presses "Cancel" on GitHub's consent page
        self.approve = True
        self.mischief = Mischief()
        #: the last request each endpoint received: query or form parameters, and headers
        self.seen: dict[str, dict[str, str]] = {}
        self.seen_headers: dict[str, Headers] = {}
        self._codes: dict[str, _Grant] = {}
        self._tokens: dict[str, _Grant] = {}
        self._hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.app = self._build_app(authorize_path, token_path, api_prefix.rstrip("/"))

    def hits(self, endpoint: str) -> int:
        """How often ``endpoint`` ("authorize", "token", "user", "emails") was called."""
        with self._lock:
            return self._hits[endpoint]

    # -- the app --------------------------------------------------------------------------------------------

    def _build_app(self, authorize_path: str, token_path: str, api_prefix: str) -> Flask:
        app = Flask("github-sim")
        app.add_url_rule(authorize_path, "authorize", self._authorize, methods=["GET"])
        app.add_url_rule(token_path, "token", self._token, methods=["POST"])
        app.add_url_rule(f"{api_prefix}/user", "user", self._user, methods=["GET"])
        app.add_url_rule(f"{api_prefix}/user/emails", "emails", self._emails, methods=["GET"])
        return app

    def _record(self, endpoint: str, params: Mapping[str, str]) -> None:
        with self._lock:
            self._hits[endpoint] += 1
            self.seen[endpoint] = dict(params)
            self.seen_headers[endpoint] = Headers(request.headers)

    def _authorize(self) -> ResponseReturnValue:
        args = request.args.to_dict()
        self._record("authorize", args)
        if args.get("client_id") != self.client_id:
            return Response("<html><body>Not Found</body></html>", 404, content_type="text/html")
        target = args.get("redirect_uri") or self.redirect_uris[0]
        back: dict[str, str] = {"state": args["state"]} if "state" in args else {}
        if target not in self.redirect_uris:  # GitHub sends the person to the registered callback instead
            back |= {"error": "redirect_uri_mismatch",
                     "error_description": "The redirect_uri MUST match the registered callback URL."}
            return redirect(_with_query(self.redirect_uris[0], back))
        challenge, method = args.get("code_challenge"), args.get("code_challenge_method")
        if challenge is not None and method != "S256":
            return Response("<html><body>Only S256 is supported</body></html>", 400, content_type="text/html")
        if not self.approve or self.signed_in is None:
            back |= {"error": "access_denied", "error_description": "The user has denied your application access."}
            return redirect(_with_query(target, back))
        code = secrets.token_hex(10)
        grant = _Grant(self.signed_in, tuple(s for s in re.split(r"[\s,]+", args.get("scope", "")) if s),
                       args.get("redirect_uri"), challenge, time.monotonic() + CODE_LIFETIME_SECONDS)
        with self._lock:
            self._codes[code] = grant
        return redirect(_with_query(target, {"code": code, **back}))

    def _token(self) -> ResponseReturnValue:
        form = request.form.to_dict()
        self._record("token", form)
        wants_json = "application/json" in request.headers.get("Accept", "") and not self.mischief.ignore_accept
        if "token" in self.mischief.html:
            return Response(_HTML, 200, content_type="text/html")
        client_ok = form.get("client_id") == self.client_id and hmac.compare_digest(
            form.get("client_secret", "").encode(), self.client_secret.encode())
        if not client_ok:
            return _token_answer({"error": "incorrect_client_credentials",
                                  "error_description": "The client_id and/or client_secret passed are incorrect."},
                                 wants_json)
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)  # spent by its first use
        if grant is None or grant.expires_at < time.monotonic() or not _pkce_ok(grant, form.get("code_verifier")):
            return _token_answer({"error": "bad_verification_code",
                                  "error_description": "The code passed is incorrect or expired."}, wants_json)
        if grant.redirect_uri is not None and form.get("redirect_uri", grant.redirect_uri) != grant.redirect_uri:
            return _token_answer({"error": "redirect_uri_mismatch",
                                  "error_description": "The redirect_uri MUST match the registered callback URL."},
                                 wants_json)
        token = "gho_" + secrets.token_urlsafe(27)
        with self._lock:
            self._tokens[token] = grant
        answer: dict[str, object] = {"access_token": token, "token_type": "bearer", "scope": ",".join(grant.scopes)}
        merged = {**answer, **self.mischief.token_overrides}
        return _token_answer({k: v for k, v in merged.items() if v is not None}, wants_json)

    def _api_grant(self, endpoint: str) -> tuple[_Grant | None, Response | None]:
        """The token's grant, or the error answer GitHub's API would give."""
        self._record(endpoint, request.args.to_dict())
        if endpoint in self.mischief.html:
            return None, Response(_HTML, 200, content_type="text/html")
        if not request.headers.get("User-Agent"):
            return None, _api_error("Request forbidden by administrative rules. Please make sure your request "
                                    "has a User-Agent header", 403)
        version = request.headers.get("X-GitHub-Api-Version")
        if version is not None and version not in API_VERSIONS:
            return None, _api_error(f"API version {version} is not supported.", 400)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("bearer", "token") or not token:
            return None, _api_error("Requires authentication", 401)
        with self._lock:
            grant = self._tokens.get(token)
        if grant is None or grant.user_id not in self.users or self.mischief.reject_tokens:
            return None, _api_error("Bad credentials", 401)
        return grant, None

    def _user(self) -> ResponseReturnValue:
        grant, refusal = self._api_grant("user")
        if grant is None:
            assert refusal is not None
            return refusal
        user = self.users[grant.user_id]
        body: dict[str, Any] = {
            "login": user.login, "id": user.id, "node_id": f"U_{user.id}", "type": "User", "site_admin": False,
            "name": user.name, "email": user.email, "html_url": f"https://github.com/{user.login}",
        }
        return _json({**body, **self.mischief.user_overrides})

    def _emails(self) -> ResponseReturnValue:
        grant, refusal = self._api_grant("emails")
        if grant is None:
            assert refusal is not None
            return refusal
        if not {"user", "user:email"} & set(grant.scopes):
            return _api_error("Not Found", 404)
        return _json([{"email": e.email, "primary": e.primary, "verified": e.verified, "visibility": e.visibility}
                      for e in self.users[grant.user_id].emails])


def _pkce_ok(grant: _Grant, verifier: str | None) -> bool:
    """RFC 7636 §4.6: BASE64URL(SHA256(verifier)) must be the challenge, when one was sent."""
    if grant.code_challenge is None:
        return True
    if verifier is None:
        return False
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii", "replace")).digest()).rstrip(b"=")
    return hmac.compare_digest(digest, grant.code_challenge.encode("ascii", "replace"))


def _token_answer(body: Mapping[str, object], wants_json: bool) -> Response:
    """GitHub answers HTTP 200 either way; JSON only for ``Accept: application/json``."""
    if wants_json:
        return _json(body)
    return Response(urlencode({k: str(v) for k, v in body.items()}), 200,
                    content_type="application/x-www-form-urlencoded; charset=utf-8")


def _json(body: object, status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _api_error(message: str, status: int) -> Response:
    return _json({"message": message, "documentation_url": "https://docs.github.com/rest"}, status)


def _with_query(url: str, params: Mapping[str, str]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
