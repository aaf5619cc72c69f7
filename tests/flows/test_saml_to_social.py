"""A legacy SAML app signs citizens in through the broker with GitHub and with Microsoft Entra, end to end.

Real peers: a pysaml2 SP, the broker on its own HTTP server, and a simulated GitHub (OAuth 2.0 + REST API)
or a simulated multi-tenant Entra ID (the demo OpenID provider behind a tenant-path router). The upstream
is picked with ``idp_hint``; each test checks the provider quirk that matters to the SP: who the person is
(GitHub's numeric id, Entra's tid+oid) and which e-mail address reaches the app.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.demo.oidc_provider import DemoClient, DemoProvider, DemoProviderSettings, DemoUser, create_demo_provider
from broker.demo.oidc_provider_config import Mischief
from broker.keys import write_private
from tests.databases import database_for
from tests.flows.federation import ExtraUpstream, Federation, running_federation, saml_status
from tests.peers.browser import Browser
from tests.peers.entra import TEMPLATE_PATH, PathRouter
from tests.peers.github_sim import GitHubEmail, GitHubSim, GitHubUser
from tests.peers.servers import WsgiApp

TENANT, OTHER_TENANT = "aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa", "bbbbbbbb-2222-4222-8222-bbbbbbbbbbbb"
OID = "cccccccc-3333-4333-8333-cccccccccccc"


def _secret(folder: Path, name: str) -> str:
    value = secrets.token_urlsafe(24)
    write_private(folder / "certs" / f"{name}.secret", value.encode())
    return value


class GitHubUpstream:
    sim: GitHubSim

    def build(self, base_url: str, redirect_uri: str, folder: Path) -> tuple[WsgiApp, dict[str, Any]]:
        self.sim = GitHubSim(client_id="gh-client", client_secret=_secret(folder, "github"),
                             redirect_uris=(redirect_uri,), users=(GitHubUser(
                                 id=583231, login="octocat", name="Mona Octocat", email="public@example.org",
                                 emails=(GitHubEmail("old@example.org", verified=True),
                                         GitHubEmail("mona@example.org", primary=True, verified=True))),))
        return self.sim.app, {
            "protocol": "oauth2", "preset": "github", "client_id": "gh-client",
            "client_secret_file": "certs/github.secret",
            "options": {"authorize_url": base_url + "/login/oauth/authorize",
                        "token_url": base_url + "/login/oauth/access_token", "api_url": base_url + "/api/v3"},
        }


class EntraUpstream:
    provider: DemoProvider
    authority: str

    def build(self, base_url: str, redirect_uri: str, folder: Path) -> tuple[WsgiApp, dict[str, Any]]:
        self.authority = base_url
        self.provider = create_demo_provider(DemoProviderSettings(
            issuer=f"{base_url}/common/v2.0",
            clients=(DemoClient("entra-client", _secret(folder, "entra"), (redirect_uri,)),),
            users=(DemoUser("meri", "pw", {"sub": "pairwise-for-app-1", "email": "meri@contoso.example",
                                           "email_verified": True, "given_name": "Meri", "name": "Meri M"}),),
            auto_login="meri",
        ))
        self.sign_in(TENANT, sub="pairwise-for-app-1")
        router = PathRouter()
        router.routes["/common/v2.0"] = self.provider.app
        return router, {
            "protocol": "oidc", "preset": "microsoft", "client_id": "entra-client",
            "client_secret_file": "certs/entra.secret",
            "options": {"tenant": "common", "allowed_tenants": [TENANT], "authority": base_url},
        }

    def sign_in(self, tid: str, *, sub: str) -> None:
        """Entra issues the next ID tokens for this tenant (and this app's pairwise ``sub``)."""
        issuer = f"{self.authority}/{tid}/v2.0"
        self.provider.mischief = Mischief(
            discovery_issuer=self.authority + TEMPLATE_PATH,
            claim_overrides={"iss": issuer, "tid": tid, "oid": OID, "sub": sub},
            iss_param=issuer, userinfo_sub=sub,
        )


@pytest.fixture
def github() -> GitHubUpstream:
    return GitHubUpstream()


@pytest.fixture
def entra() -> EntraUpstream:
    return EntraUpstream()


@pytest.fixture
def federation(tmp_path: Path, key_folder: Path, github: GitHubUpstream, entra: EntraUpstream) -> Iterator[Federation]:
    database = database_for("sqlite", tmp_path)
    extras = [ExtraUpstream("github", github.build), ExtraUpstream("entra", entra.build)]
    with running_federation(tmp_path / "instance", key_folder, next(database), extra_upstreams=extras) as running:
        yield running


def _login(federation: Federation, browser: Browser, upstream: str) -> tuple[str, dict[str, str]]:
    request_id, location = federation.sps["sp1"].redirect_request()
    page = browser.get(location + f"&idp_hint={upstream}")
    return request_id, browser.form_fields(page)


def test_github_citizen_reaches_the_app_with_the_primary_verified_address(federation: Federation,
                                                                          github: GitHubUpstream) -> None:
    with Browser() as browser:
        request_id, fields = _login(federation, browser, "github")
    response = federation.sps["sp1"].parse(fields["SAMLResponse"], request_id)
    assert response.get_identity()["mail"] == ["mona@example.org"]

    renamed = github.sim.users[583231]
    github.sim.users[583231] = GitHubUser(id=renamed.id, login="mona-renamed", name=renamed.name,
                                          emails=renamed.emails)
    with Browser() as browser:
        again_id, again = _login(federation, browser, "github")
    again_response = federation.sps["sp1"].parse(again["SAMLResponse"], again_id)
    assert again_response.get_subject().text == response.get_subject().text  # the numeric id, not the login
    assert federation.accounts() == 1


def test_entra_identity_is_tid_and_oid_whatever_the_pairwise_sub(federation: Federation,
                                                                 entra: EntraUpstream) -> None:
    with Browser() as browser:
        request_id, fields = _login(federation, browser, "entra")
    first = federation.sps["sp1"].parse(fields["SAMLResponse"], request_id)
    entra.sign_in(TENANT, sub="pairwise-for-another-app")
    with Browser() as browser:
        again_id, again = _login(federation, browser, "entra")
    second = federation.sps["sp1"].parse(again["SAMLResponse"], again_id)

    assert second.get_subject().text == first.get_subject().text
    assert federation.accounts() == 1


def test_entra_tenant_outside_the_allow_list_is_refused(federation: Federation, entra: EntraUpstream) -> None:
    entra.sign_in(OTHER_TENANT, sub="someone")
    with Browser() as browser:
        _, fields = _login(federation, browser, "entra")

    assert saml_status(fields) == ("urn:oasis:names:tc:SAML:2.0:status:Responder",
                                   "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed")
    assert federation.accounts() == 0
