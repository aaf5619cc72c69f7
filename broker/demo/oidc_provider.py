"""A real OpenID Connect provider for demos and tests, built on authlib's authorization server.

Authorization code flow only (OIDC Core 1.0 §3.1) with PKCE S256 required for every client (RFC 7636),
client_secret_basic and client_secret_post at the token endpoint (RFC 6749 §2.3.1), the ``iss`` authorization
response parameter (RFC 9207), discovery (OIDC Discovery 1.0 §3-4), a JWKS and a UserInfo endpoint
(OIDC Core 1.0 §5.3). Storage is in memory. ``DemoProvider.mischief`` makes it misbehave for negative tests;
``DemoProviderSettings.apple`` makes it answer like Sign in with Apple (``oidc_provider_apple``).

It is labelled DEMO everywhere a person can see it: it must never stand in for a real identity provider.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from flask import Flask, jsonify, render_template_string, request
from flask.typing import ResponseReturnValue

from broker.demo.oidc_provider_apple import AppleBehaviour
from broker.demo.oidc_provider_config import (
    NO_MISCHIEF,
    AppleStyle,
    DemoClient,
    DemoProviderSettings,
    DemoUser,
    Mischief,
)
from broker.demo.oidc_provider_keys import ALG, KeyRing
from broker.demo.oidc_provider_server import build_authorization_server
from broker.demo.oidc_provider_store import APPLE_SCOPES, SUPPORTED_SCOPES, DemoStore

__all__ = ["AppleStyle", "DemoClient", "DemoProvider", "DemoProviderSettings", "DemoUser", "Mischief",
           "create_demo_provider"]

ENDPOINTS = {
    "discovery": "/.well-known/openid-configuration",
    "jwks": "/jwks",
    "authorize": "/authorize",
    "token": "/token",
    "userinfo": "/userinfo",
}

LOGIN_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>DEMO sign-in provider (not a real identity provider)</title></head>
<body>
<main>
<h1>DEMO sign-in provider</h1>
<p><strong>This is a demonstration identity provider for testing only. It is not a real identity provider;
do not enter a real password.</strong></p>
<p>The application <code>{{ client_id }}</code> asks you to sign in.</p>
{% if error %}<p role="alert">{{ error }}</p>{% endif %}
<form method="post" action="">
  <p><label for="username">User name</label><br>
     <input id="username" name="username" type="text" autocomplete="username" required></p>
  <p><label for="password">Password</label><br>
     <input id="password" name="password" type="password" autocomplete="current-password" required></p>
  <p><button type="submit" name="login" value="1">Sign in</button>
     <button type="submit" name="deny" value="1" formnovalidate>Cancel</button></p>
</form>
</main>
</body>
</html>
"""


class DemoProvider:
    """One running demo provider: ``app`` is its Flask app; the methods change or inspect it for tests."""

    def __init__(self, settings: DemoProviderSettings) -> None:
        self.settings = settings
        #: replace at runtime to make the provider misbehave (read once per request)
        self.mischief: Mischief = NO_MISCHIEF
        self.keys = KeyRing(settings.signing_key)
        #: the Apple-style behaviour, when ``settings.apple`` asks for it
        self.apple = AppleBehaviour(settings.apple) if settings.apple is not None else None
        self.store = DemoStore(settings, self.apple.check_client_secret if self.apple is not None else None)
        self._hits: Counter[str] = Counter()
        #: the parameters of the latest authorization request, for tests of what a relying party asked
        self.last_authorization: dict[str, str] = {}
        self._hits_lock = threading.Lock()
        self.app = _build_app(self)

    @property
    def issuer(self) -> str:
        return self.settings.issuer

    @property
    def current_kid(self) -> str:
        return str(self.keys.current.kid)

    def url(self, endpoint: str) -> str:
        """The absolute URL of ``endpoint`` (a key of ``ENDPOINTS``)."""
        return self.issuer + ENDPOINTS[endpoint]

    def rotate_key(self) -> str:
        """Sign with a new key (new ``kid``) from now on; the old keys stay in the JWKS. Returns the new kid."""
        return self.keys.rotate()

    def drop_old_keys(self) -> None:
        """Remove every key but the current one from the JWKS."""
        self.keys.drop_old()

    def jwks(self) -> dict[str, Any]:
        return self.keys.public_jwks()

    def hits(self, endpoint: str) -> int:
        """How many requests ``endpoint`` (a key of ``ENDPOINTS``) has answered."""
        with self._hits_lock:
            return self._hits[endpoint]

    def count(self, endpoint: str) -> None:
        with self._hits_lock:
            self._hits[endpoint] += 1

    def discovery(self) -> dict[str, Any]:
        """The OpenID Provider Metadata (OIDC Discovery 1.0 §3, RFC 9207 §3)."""
        if self.apple is not None:
            return self._apple_discovery()
        return {
            "issuer": self.mischief.discovery_issuer or self.issuer,
            "authorization_endpoint": self.url("authorize"),
            "token_endpoint": self.url("token"),
            "userinfo_endpoint": self.url("userinfo"),
            "jwks_uri": self.url("jwks"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALG],
            "scopes_supported": list(SUPPORTED_SCOPES),
            "token_endpoint_auth_methods_supported": list(self.settings.token_auth_methods),
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": sorted({"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr",
                                        *(c for u in self.settings.users for c in u.claims)}),
            "authorization_response_iss_parameter_supported": True,
        }

    def _apple_discovery(self) -> dict[str, Any]:
        """Shaped like https://appleid.apple.com/.well-known/openid-configuration: no UserInfo endpoint, no
        RFC 9207 ``iss`` parameter, client_secret_post only."""
        return {
            "issuer": self.mischief.discovery_issuer or self.issuer,
            "authorization_endpoint": self.url("authorize"),
            "token_endpoint": self.url("token"),
            "jwks_uri": self.url("jwks"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": [ALG],
            "scopes_supported": list(APPLE_SCOPES),
            "token_endpoint_auth_methods_supported": list(self.settings.client_auth_methods),
            "claims_supported": ["aud", "email", "email_verified", "exp", "iat", "is_private_email", "iss",
                                 "nonce", "nonce_supported", "real_user_status", "sub"],
        }


def create_demo_provider(settings: DemoProviderSettings) -> DemoProvider:
    return DemoProvider(settings)


# -- the Flask app -------------------------------------------------------------------------------------------


def _build_app(provider: DemoProvider) -> Flask:
    app = Flask(__name__)
    app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"authorization_code": provider.settings.token_lifetime_seconds}
    server = build_authorization_server(provider, app)
    prefix = urlsplit(provider.issuer).path.rstrip("/")

    def discovery() -> ResponseReturnValue:
        provider.count("discovery")
        return jsonify(provider.discovery())

    def jwks() -> ResponseReturnValue:
        provider.count("jwks")
        return jsonify(provider.jwks())

    def authorize() -> ResponseReturnValue:
        provider.count("authorize")
        provider.last_authorization = request.values.to_dict()
        apple = provider.apple
        problem = apple.request_problem(request.values) if apple is not None else None
        if problem is not None:
            return problem, 400, {"Content-Type": "text/plain; charset=utf-8"}
        client_id, scope = request.values.get("client_id", ""), request.values.get("scope", "")
        try:
            grant = server.get_consent_grant(end_user=None)
        except OAuth2Error as error:
            # authlib runs the RFC 9207 hook only in create_authorization_response; errors found while
            # validating the request must carry ``iss`` too (RFC 9207 §2), so run it here as well
            response = server.handle_error_response(None, error)
            server.execute_hook("after_create_authorization_response", response)
            return apple.deliver(response, None, client_id, scope) if apple is not None else response
        auto_login = provider.settings.auto_login
        if auto_login is not None:
            user = provider.store.user(auto_login)
        elif request.method == "GET":
            return _login_page(grant, None)
        elif request.form.get("deny"):
            user = None  # RFC 6749 §4.1.2.1: access_denied back to the client
        else:
            user = provider.store.authenticate(request.form.get("username", ""), request.form.get("password", ""))
            if user is None:
                return _login_page(grant, "Wrong user name or password.")
        response = server.create_authorization_response(grant=grant, grant_user=user)
        return apple.deliver(response, user, client_id, scope) if apple is not None else response

    def token() -> ResponseReturnValue:
        provider.count("token")
        return server.create_token_response()  # type: ignore[no-any-return]

    def userinfo() -> ResponseReturnValue:
        provider.count("userinfo")
        return server.create_endpoint_response("userinfo")  # type: ignore[no-any-return]

    app.add_url_rule(prefix + ENDPOINTS["discovery"], "discovery", discovery)
    app.add_url_rule(prefix + ENDPOINTS["jwks"], "jwks", jwks)
    app.add_url_rule(prefix + ENDPOINTS["authorize"], "authorize", authorize, methods=["GET", "POST"])
    app.add_url_rule(prefix + ENDPOINTS["token"], "token", token, methods=["POST"])
    if provider.apple is None:  # Apple has no UserInfo endpoint
        app.add_url_rule(prefix + ENDPOINTS["userinfo"], "userinfo", userinfo, methods=["GET", "POST"])
    return app


def _login_page(grant: Any, error: str | None) -> ResponseReturnValue:
    page = render_template_string(LOGIN_PAGE, client_id=grant.client.client_id, error=error)
    return page, 200, {
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    }
