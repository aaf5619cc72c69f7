"""Apps moving from another identity provider keep their client secret: ``broker client import`` registers
them with the secrets they already have, and the apps sign citizens in with those secrets unchanged.

Real peers: the ``broker`` command writes the client files into the running broker's instance; authlib relying
parties (whose token requests go through ``authlib.integrations.requests_client.OAuth2Session``) sign in with
client_secret_basic and client_secret_post, and an ``OAuth2Session`` of their own refreshes tokens at the
broker's token endpoint (RFC 6749 §2.3.1, §6). A wrong secret is refused with ``invalid_client`` (§5.2).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from broker.cli.main import main
from tests.flows.federation import Federation
from tests.flows.oidc_peers import RelyingParty
from tests.peers.browser import Browser
from tests.peers.servers import LateApp, RunningServer, serve

#: the secrets the apps had at their previous provider (as Keycloak and Google make them)
SECRETS = {"permits": "q7Vd9XkP2mWb4ZtR8sLc1NhJ6yFg3EaU", "library": "GOCSPX-1a2B3c4D5e6F7g8H9i0JkLmNoPq"}
METHODS = {"permits": "client_secret_basic", "library": "client_secret_post"}


def sign_in(browser: Browser, rp: RelyingParty) -> requests.Response:
    """The person opens the app's login link and is carried through to the app's callback."""
    return browser.get(f"{rp.url}/login")


@contextmanager
def _servers(count: int) -> Iterator[list[tuple[LateApp, RunningServer]]]:
    pairs = []
    try:
        for _ in range(count):
            late = LateApp()
            pairs.append((late, serve(late)))
        yield pairs
    finally:
        for _, server in pairs:
            server.stop()


def _import(federation: Federation, servers: dict[str, RunningServer], capsys: pytest.CaptureFixture[str]) -> None:
    """The operator's migration: an export of the old registrations, imported with the ``broker`` command."""
    export = [{"client_id": client_id, "client_secret": SECRETS[client_id], "client_name": client_id.title(),
               "token_endpoint_auth_method": METHODS[client_id], "redirect_uris": [f"{server.url}/callback"],
               "grant_types": ["authorization_code", "refresh_token"], "scope": "openid profile email",
               "client_secret_expires_at": 0} for client_id, server in servers.items()]
    source = federation.folder / "export.json"
    source.write_text(json.dumps(export))
    capsys.readouterr()
    code = main(["--config", str(federation.folder / "broker.toml"), "client", "import", str(source)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert all(secret not in out + err for secret in SECRETS.values())
    snapshot = federation.app.extensions["broker"].registry.reload()
    assert set(SECRETS) <= set(snapshot.oidc_clients), snapshot.problems


def test_imported_clients_sign_in_with_their_old_secrets(federation: Federation, browser: Browser,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    with _servers(2) as pairs:
        servers = {client_id: server for client_id, (_, server) in zip(SECRETS, pairs, strict=False)}
        _import(federation, servers, capsys)
        apps = {client_id: RelyingParty(federation.url, server, late, client_id, SECRETS[client_id],
                                        auth_method=METHODS[client_id], scope="openid email")
                for client_id, (late, server) in zip(SECRETS, pairs, strict=False)}
        token_url = f"{federation.url}/oidc/token"

        for client_id, app in apps.items():
            page = sign_in(browser, app)
            assert page.status_code == 200, page.text
            outcome = app.last
            assert outcome.error is None, outcome.error_description
            assert outcome.id_token_claims is not None and outcome.id_token_claims["aud"] == client_id
            assert outcome.userinfo is not None and outcome.userinfo["email"] == "anna@example.org"
            assert outcome.token is not None and outcome.token["refresh_token"]

            # the app's own OAuth2Session, as its back end would renew tokens later, with the same old secret
            session = OAuth2Session(client_id, SECRETS[client_id], token_endpoint_auth_method=METHODS[client_id])
            renewed = session.refresh_token(token_url, refresh_token=outcome.token["refresh_token"])
            assert renewed["access_token"] and renewed["refresh_token"] != outcome.token["refresh_token"]

            wrong = OAuth2Session(client_id, SECRETS[client_id][:-1] + "x",
                                  token_endpoint_auth_method=METHODS[client_id])
            with pytest.raises(OAuthError) as refused:
                wrong.refresh_token(token_url, refresh_token=renewed["refresh_token"])
            assert refused.value.error == "invalid_client"


def test_a_wrong_secret_is_refused_at_the_token_endpoint(federation: Federation, browser: Browser,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with _servers(2) as pairs:
        servers = {client_id: server for client_id, (_, server) in zip(SECRETS, pairs, strict=False)}
        _import(federation, servers, capsys)
        for client_id, (late, server) in zip(SECRETS, pairs, strict=False):
            # the secret the other app had: right format, wrong client
            other = next(secret for name, secret in SECRETS.items() if name != client_id)
            app = RelyingParty(federation.url, server, late, client_id, other, auth_method=METHODS[client_id],
                               scope="openid email")

            sign_in(browser, app)

            assert app.last.error == "invalid_client"
            assert app.last.token is None and app.last.userinfo is None
