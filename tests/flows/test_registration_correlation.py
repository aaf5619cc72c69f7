"""What a dynamically registered client (RFC 7591) can learn about citizens, and what it can make them believe
(issue 15, point 5), over real HTTP with the authlib relying party of ``oidc_peers``.

- Its ``sub`` is pairwise (OIDC Core §8.1): ``subject_type: public`` would hand it the identifier every public
  client of the operator sees, so registration refuses it (RFC 7591 §3.2.2) unless the operator allows it.
- Loopback redirect URIs (RFC 8252 §7.3) name no one's host: two apps on 127.0.0.1 with different ports are
  different sectors, so they get different subjects for the same citizen.
- Its ``client_name`` is its own claim: the consent page says the city has not verified it; an app the operator
  registered in a file is named without that remark.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import lxml.html  # type: ignore[import-untyped]
import pytest
import requests

from broker.downstream.oidc.id_token import subject
from broker.oidc.client import OidcClient
from broker.oidc.client_metadata import parse_client_metadata
from broker.registry.oidc_clients import FILE_POLICY
from tests.databases import database_for
from tests.flows.consent_support import policy
from tests.flows.federation import Federation, running_federation
from tests.flows.oidc_peers import RelyingParty, relying_party
from tests.flows.oidc_registration_support import app_server, sign_in
from tests.peers.browser import Browser

INITIAL_TOKEN = "initial-" + secrets.token_urlsafe(32)
APP_CALLBACK = "https://permits.city.example.org/oidc/callback"
UNVERIFIED = "is the name given by the app itself, not verified by the city"


@contextmanager
def registering(folder: Path, key_folder: Path, allow_public: bool | None = None) -> Iterator[Federation]:
    """A federation (SQLite) offering registration to 127.0.0.1 and *.city.example.org; ``allow_public``
    sets ``[oidc] registration_allow_public_subjects`` (None: left at its default)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "registration.token").write_text(INITIAL_TOKEN)
    config = (f'[oidc]\nregistration_token_file = "{folder / "registration.token"}"\n'
              'registration_allowed_hosts = ["127.0.0.1", "*.city.example.org"]\n')
    if allow_public is not None:
        config += f"registration_allow_public_subjects = {json.dumps(allow_public)}\n"
    database = database_for("sqlite", folder)
    try:
        with running_federation(folder / "instance", key_folder, next(database), extra_config=config) as fed:
            yield fed
    finally:
        for _ in database:
            pass


@pytest.fixture(scope="module")
def dcr(tmp_path_factory: pytest.TempPathFactory, key_folder: Path) -> Iterator[Federation]:
    with registering(tmp_path_factory.mktemp("correlation"), key_folder) as fed:
        yield fed


def register(fed: Federation, **metadata: Any) -> requests.Response:
    return requests.post(f"{fed.url}/oidc/register", json={"redirect_uris": [APP_CALLBACK], **metadata},
                         headers={"Authorization": f"Bearer {INITIAL_TOKEN}"}, timeout=10)


@contextmanager
def registered_app(fed: Federation, **metadata: Any) -> Iterator[RelyingParty]:
    """A running app on http://127.0.0.1:<its own port> that registered itself (RFC 7591) and signs in."""
    with app_server() as (server, late):
        answer = register(fed, redirect_uris=[f"{server.url}/callback"], **metadata)
        assert answer.status_code == 201, answer.text
        body = answer.json()
        yield RelyingParty(fed.url, server, late, body["client_id"], body.get("client_secret"),
                           auth_method=body["token_endpoint_auth_method"], scope="openid profile email")


# -- subject_type ----------------------------------------------------------------------------------------------


def test_registration_refuses_public_subjects(dcr: Federation) -> None:
    refused = register(dcr, subject_type="public")

    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_client_metadata"
    assert "subject_type public" in refused.json()["error_description"]

    answer = register(dcr)  # asking nothing: pairwise, and an update cannot switch to public either
    assert answer.status_code == 201 and answer.json()["subject_type"] == "pairwise"
    body = {k: v for k, v in answer.json().items() if k not in ("client_secret", "client_secret_expires_at")}
    update = requests.put(body["registration_client_uri"], json={**body, "subject_type": "public"}, timeout=10,
                          headers={"Authorization": f"Bearer {body['registration_access_token']}"})
    assert update.status_code == 400 and update.json()["error"] == "invalid_client_metadata"
    client = dcr.app.extensions["broker"].registry.oidc_client(body["client_id"])
    assert client is not None and client.subject_type == "pairwise"


def test_the_operator_may_allow_public_subjects(tmp_path: Path, key_folder: Path) -> None:
    with registering(tmp_path, key_folder, allow_public=True) as fed:
        answer = register(fed, subject_type="public")

        assert answer.status_code == 201, answer.text
        assert answer.json()["subject_type"] == "public"
        client = fed.app.extensions["broker"].registry.oidc_client(answer.json()["client_id"])
        assert client is not None and client.subject_type == "public"


# -- loopback sectors ------------------------------------------------------------------------------------------


def test_two_loopback_apps_on_different_ports_get_different_subjects(dcr: Federation) -> None:
    with ExitStack() as stack, Browser() as browser:
        one = stack.enter_context(registered_app(dcr, token_endpoint_auth_method="none"))
        two = stack.enter_context(registered_app(dcr, token_endpoint_auth_method="none"))
        assert one.redirect_uri.startswith("http://127.0.0.1:") and two.redirect_uri.startswith("http://127.0.0.1:")
        assert one.server.port != two.server.port
        subjects = []
        for rp in (one, two, one):  # the same citizen, one SSO session
            page = sign_in(browser, rp)
            assert page.status_code == 200 and rp.last.error is None, page.text
            assert rp.last.id_token_claims is not None and rp.last.userinfo is not None
            assert rp.last.id_token_claims["sub"] == rp.last.userinfo["sub"]
            subjects.append(rp.last.id_token_claims["sub"])

        assert subjects[0] != subjects[1]  # a sector each (OIDC Core §8.1), not one "127.0.0.1"
        assert subjects[0] == subjects[2]  # yet stable for one app


def test_a_loopback_sector_is_never_a_host_sector() -> None:
    """A client whose id looks like a host (an operator may choose any id) still gets its own subjects on
    loopback, not those of the apps on that host."""
    secret, account = b"k" * 32, "account-1"
    on_host = OidcClient("permits", "Permits", ("https://permits.city.example.org/cb",), "none",
                         sector="permits.city.example.org")
    raw = {"client_id": "permits.city.example.org", "redirect_uris": ["http://127.0.0.1:8400/cb"],
           "token_endpoint_auth_method": "none"}
    on_loopback = parse_client_metadata(raw, FILE_POLICY, client_id=None, source="metadata/oidc-clients/x.json")

    assert on_loopback.sector != on_host.sector
    assert subject(secret, on_loopback, account) != subject(secret, on_host, account)


# -- the name an app gives itself ------------------------------------------------------------------------------


def _consent_page(browser: Browser, rp: RelyingParty) -> requests.Response:
    page = browser.get(f"{rp.url}/login")
    assert page.status_code == 200 and "Share your information with" in page.text, page.text[:300]
    return page


def test_the_consent_page_marks_a_registered_name_as_the_apps_own(dcr: Federation) -> None:
    name = 'City of <b>Example</b> "Official" Parking'
    with registered_app(dcr, client_name=name) as app, \
            relying_party(dcr, "operator-app", client_name="Parking permits") as operator, Browser() as browser:
        policy(dcr, f'version = "p1"\n[default]\nconsent_exempt = true\n[apps."{app.client_id}"]\n'
                    'consent_exempt = false\n[apps.operator-app]\nconsent_exempt = false\n')
        try:
            page = _consent_page(browser, app)
            marks = lxml.html.fromstring(page.text).find_class("unverified")
            assert len(marks) == 1 and UNVERIFIED in marks[0].text_content()
            assert f"“{name}”" in marks[0].text_content()  # the name itself, as text
            assert "<b>Example</b>" not in page.text and "&lt;b&gt;Example&lt;/b&gt;" in page.text  # escaped

            page = _consent_page(browser, operator)
            assert "Parking permits" in page.text
            assert UNVERIFIED not in page.text and not lxml.html.fromstring(page.text).find_class("unverified")
        finally:
            policy(dcr, 'version = "test"\n[default]\nconsent_exempt = true\n')
