"""An operator registers a SAML app from the console (issue 19, "Done when"), over real HTTP: the metadata a real
pysaml2 SP produced is uploaded, validated exactly as the broker loads it and shown with its diff; nothing is
served until "Apply"; then a citizen signs in to that app and the SP accepts the broker's signed Response. An
OpenID client's JSON gets a secret shown once; switching an app off stops its sign-ins; each write is audited with
the operator, and roles without ``manage-parties`` cannot reach any of it.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import requests

from broker.core.audit import AuditKind
from broker.core.operators import Role
from tests.flows.console_support import console_operator
from tests.flows.federation import Federation, FixedClock, saml_status
from tests.flows.portal_support import services
from tests.flows.saml_peers import SpKeys, TestSp
from tests.peers.browser import Browser
from tests.peers.tls import throwaway_ca, trusted_by_requests


def _new_sp(federation: Federation, key_folder: Path) -> TestSp:
    keys = SpKeys(key_folder / "sp3" / "signing.key", key_folder / "sp3" / "signing.crt")
    sp = TestSp("http://127.0.0.1:9/sp3", keys)
    with trusted_by_requests(throwaway_ca()):
        sp.connect(requests.get(federation.url + "/saml2/idp/metadata", timeout=10).text)
    return sp


def _preview(federation: Federation, browser: Browser, kind: str, text: str, **settings: str) -> requests.Response:
    form = browser.get(f"{federation.url}/console/apps/new")
    assert form.status_code == 200, form.text[:300]
    return browser.submit(form, {"kind": kind, "text": text, **settings}, form="app-upload")


def test_an_operator_registers_a_saml_app_and_a_citizen_then_signs_in_to_it(federation: Federation,
                                                                             browser: Browser,
                                                                             key_folder: Path) -> None:
    operator = console_operator(federation, browser, Role.OPERATOR)
    sp = _new_sp(federation, key_folder)

    preview = _preview(federation, browser, "saml", sp.metadata(), display_name="Library loans")
    assert preview.status_code == 200 and 'id="apply"' in preview.text, preview.text[:2000]
    assert sp.entity_id in preview.text and sp.acs_url in preview.text and "SHA-256" in preview.text
    assert "Library loans" in preview.text  # the diff shows the name citizens will see
    assert sp.entity_id not in _app_ids(federation)

    applied = browser.submit(preview, form="apply")
    assert applied.status_code == 200 and "App registered" in applied.text, applied.text[:500]

    with Browser() as citizen:
        request_id, location = sp.redirect_request()
        answer = citizen.get(location)
        fields = citizen.form_fields(answer)
        assert saml_status(fields)[0].endswith(":Success"), answer.text[:500]
        assert sp.parse(fields["SAMLResponse"], request_id) is not None
    changes = [r for r in services(federation).audit.events(limit=50)
               if r.kind == AuditKind.REGISTRATION_CHANGED.value and r.downstream == sp.entity_id]
    assert any(f"by operator {operator}" in (r.reason or "") for r in changes)


def test_broken_metadata_is_shown_with_its_problems_and_cannot_be_applied(federation: Federation,
                                                                          browser: Browser) -> None:
    console_operator(federation, browser, Role.ADMIN)
    before = _app_ids(federation)

    preview = _preview(federation, browser, "saml", "<EntityDescriptor>not SAML metadata")

    assert 'id="problems"' in preview.text and 'id="apply"' not in preview.text
    assert _app_ids(federation) == before


def test_an_oidc_client_gets_a_secret_shown_once_and_switching_an_app_off_stops_it(federation: Federation,
                                                                                   browser: Browser) -> None:
    console_operator(federation, browser, Role.ADMIN)
    client = {"client_id": "parking", "client_name": "Parking permits",
              "redirect_uris": ["https://127.0.0.1:9/cb"], "token_endpoint_auth_method": "client_secret_basic"}

    applied = browser.submit(_preview(federation, browser, "oidc", json.dumps(client)), form="apply")
    assert 'id="client-secret"' in applied.text
    registered = services(federation).registry.oidc_client("parking")
    assert registered is not None and registered.client_secret_hash

    listing = browser.get(f"{federation.url}/console/apps/")
    sp1 = federation.sps["sp1"]
    off = next(i for i, f in enumerate(_forms(listing)) if f'value="{sp1.entity_id}"' in f and "disable" in f)
    browser.submit(listing, form=off)
    with Browser() as citizen:
        _, location = sp1.redirect_request()
        assert citizen.get(location).status_code in (400, 403)


def test_roles_without_manage_parties_cannot_register(federation: Federation, browser: Browser,
                                                      key_folder: Path) -> None:
    console_operator(federation, browser, Role.AUDITOR)
    assert browser.get(f"{federation.url}/console/apps/").status_code == 200  # auditors may look
    assert browser.get(f"{federation.url}/console/apps/new").status_code == 403
    token = browser.get(f"{federation.url}/console/apps/").text.split('name="csrf_token" value="')[1].split('"')[0]
    sp = _new_sp(federation, key_folder)
    posted = browser.post(f"{federation.url}/console/apps/preview", {"csrf_token": token, "kind": "saml",
                                                                     "text": sp.metadata()},
                          initiator=f"{federation.url}/console/apps/")
    assert posted.status_code == 403


def test_applying_needs_a_recent_sign_in(federation: Federation, browser: Browser, key_folder: Path) -> None:
    console_operator(federation, browser, Role.OPERATOR)
    preview = _preview(federation, browser, "saml", _new_sp(federation, key_folder).metadata())
    federation.set_clock(FixedClock(services(federation).clock.now() + timedelta(minutes=6)))

    again = browser.submit(preview, form="apply")

    assert "sign in again" in again.text
    assert "http://127.0.0.1:9/sp3" not in _app_ids(federation)


def _app_ids(federation: Federation) -> set[str]:
    apps = services(federation).journeys.apps
    assert apps is not None
    return {a.party_id for a in apps.apps()}


def _forms(page: requests.Response) -> list[str]:
    return page.text.split("<form")[1:]
