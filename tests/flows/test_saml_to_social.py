"""A legacy SAML app signs citizens in through the broker with GitHub and with Microsoft Entra, end to end.

Real peers: a pysaml2 SP, the broker on its own HTTP server, and a simulated GitHub (OAuth 2.0 + REST API)
or a simulated multi-tenant Entra ID (the demo OpenID provider behind a tenant-path router). The upstream
is picked with ``idp_hint``; each test checks the provider quirk that matters to the SP: who the person is
(GitHub's numeric id, Entra's tid+oid) and which e-mail address reaches the app.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import database_for
from tests.flows.federation import ExtraUpstream, Federation, running_federation, saml_status
from tests.flows.saml_to_social_support import OTHER_TENANT, TENANT, EntraUpstream, GitHubUpstream
from tests.peers.browser import Browser
from tests.peers.github_sim import GitHubUser


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
