"""A real OpenID Connect relying party for the flow tests: a Flask app using authlib's client.

It learns the broker from its discovery document, sends the person there with PKCE and a nonce, and on
return exchanges the code and validates the ID token against the broker's published JWKS (authlib does
the signature, ``iss``, ``aud``, ``exp`` and ``nonce`` checks); then it calls UserInfo. Nothing here knows
the broker's internals. ``register_client`` writes the client's metadata file the way an integrator would.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, jsonify, request
from werkzeug.wrappers import Response

from broker.oidc.client import hash_secret
from tests.flows.federation import Federation
from tests.peers.servers import LateApp, RunningServer, serve
from tests.peers.tls import throwaway_ca


def register_client(fed: Federation, client_id: str, redirect_uris: list[str], *,
                    auth_method: str = "client_secret_basic", **metadata: Any) -> str | None:
    """Write ``metadata/oidc-clients/<id>.json`` (RFC 7591 form) and reload; the secret, if the method has one."""
    secret = secrets.token_urlsafe(32) if auth_method.startswith("client_secret") else None
    document: dict[str, Any] = {"client_id": client_id, "redirect_uris": redirect_uris,
                                "token_endpoint_auth_method": auth_method, **metadata}
    if secret is not None:
        document["client_secret_hash"] = hash_secret(secret)
    folder = fed.folder / "metadata" / "oidc-clients"
    folder.mkdir(exist_ok=True)
    (folder / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', client_id)}.json").write_text(json.dumps(document))
    snapshot = fed.app.extensions["broker"].registry.reload()
    assert client_id in snapshot.oidc_clients, snapshot.problems
    return secret


@dataclass
class Outcome:
    """What the relying party saw at its callback."""

    token: dict[str, Any] | None = None
    id_token_claims: dict[str, Any] | None = None
    userinfo: dict[str, Any] | None = None
    error: str | None = None
    error_description: str | None = None
    callback_args: dict[str, str] = field(default_factory=dict)


class RelyingParty:
    """The app: ``/login`` starts a sign-in (extra query parameters go to the authorization request),
    ``/callback`` finishes it and records an ``Outcome``."""

    def __init__(self, broker_url: str, server: RunningServer, late: LateApp, client_id: str, secret: str | None,
                 *, auth_method: str, scope: str) -> None:
        self.url, self.server, self.client_id, self.secret = server.url, server, client_id, secret
        self.redirect_uri = f"{server.url}/callback"
        self.outcomes: list[Outcome] = []
        app = Flask("relying_party")
        app.config["SECRET_KEY"] = secrets.token_hex(16)
        app.config["SESSION_COOKIE_NAME"] = "rp_session"
        oauth = OAuth(app)
        self.client = oauth.register(
            "broker", client_id=client_id, client_secret=secret,
            server_metadata_url=f"{broker_url}/.well-known/openid-configuration",
            client_kwargs={"scope": scope, "code_challenge_method": "S256", "token_endpoint_auth_method": auth_method},
        )
        app.add_url_rule("/login", "login", self._login)
        app.add_url_rule("/callback", "callback", self._callback, methods=["GET", "POST"])
        late.target = app

    def _login(self) -> Response:
        extra = {k: v for k, v in request.args.items()}
        response: Response = self.client.authorize_redirect(self.redirect_uri, **extra)
        return response

    def _callback(self) -> Response:
        outcome = Outcome(callback_args={**request.args.to_dict(), **request.form.to_dict()})
        self.outcomes.append(outcome)
        try:
            token = self.client.authorize_access_token()
        except OAuthError as exc:
            outcome.error, outcome.error_description = exc.error, exc.description
            answer = jsonify({"error": exc.error})
            answer.status_code = 400
            return answer
        outcome.token = dict(token)
        outcome.id_token_claims = dict(token.get("userinfo") or {})
        outcome.userinfo = dict(self.client.userinfo(token=token))
        return jsonify({"ok": True})

    @property
    def last(self) -> Outcome:
        return self.outcomes[-1]


@contextmanager
def relying_party(fed: Federation, client_id: str = "city-app", *, auth_method: str = "client_secret_basic",
                  scope: str = "openid profile email", **metadata: Any) -> Iterator[RelyingParty]:
    """A registered, running relying party for ``fed``, over https like the broker: an app on plain http
    would be another site than the broker (schemeful same-site), and its Lax session cookie would not come
    along on the broker's ``form_post``, as in a real browser."""
    late = LateApp()
    server = serve(late, tls=throwaway_ca())
    try:
        secret = register_client(fed, client_id, [f"{server.url}/callback"], auth_method=auth_method,
                                 scope=scope, **metadata)
        yield RelyingParty(fed.url, server, late, client_id, secret, auth_method=auth_method, scope=scope)
    finally:
        server.stop()

