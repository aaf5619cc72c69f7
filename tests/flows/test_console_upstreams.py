"""An operator registers upstream identity providers and edits a SAML app's settings from the console (issue 19),
over real HTTP: the registration JSON is checked exactly as the broker will use it and shown with its diff,
nothing is served until "Apply", then the registry serves it and the login's choice lists it; documents the broker
would not use (no issuer, a client secret inside, an unknown preset) are refused and write nothing. A SAML app's
settings form is prefilled, its preview shows the diff, bad values come back linked to their fields and change
nothing, and applying needs a recent sign-in. Roles without ``manage-parties`` reach none of it.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import lxml.html  # type: ignore[import-untyped]  # lxml ships no type information
import pytest
import requests

from broker.core.audit import AuditKind
from broker.core.operators import Role
from tests.flows.app_settings import app_settings
from tests.flows.console_support import console_operator
from tests.flows.federation import Federation, FixedClock
from tests.flows.portal_support import services
from tests.peers.browser import Browser

CITY_IDP = {"name": "city-idp", "protocol": "oidc", "issuer": "https://idp.city.example", "client_id": "broker",
            "client_secret_file": "city-idp.secret", "display_name": "City staff"}
STATE_IDP = {"name": "state-idp", "protocol": "saml", "entity_id": "https://idp.state.example/idp",
             "display_name": "State ID", "options": {"email_verified": "true"}}
SECRET = "a-secret-that-must-never-show-up-anywhere"


def _upstream_preview(federation: Federation, browser: Browser, document: object) -> requests.Response:
    form = browser.get(f"{federation.url}/console/apps/upstreams/new")
    assert form.status_code == 200, form.text[:300]
    return browser.submit(form, {"text": json.dumps(document)}, form="upstream-upload")


def _upstream_files(federation: Federation) -> dict[str, str]:
    folder = federation.folder / "metadata" / "upstreams"
    return {path.name: path.read_text() for path in sorted(folder.glob("*"))} if folder.is_dir() else {}


def _login_choice(federation: Federation) -> str:
    """The page a citizen sees when sp1 sends them to sign in: the choice of upstreams."""
    with Browser() as citizen:
        _, location = federation.sps["sp1"].redirect_request()
        page = citizen.get(location)
        assert page.status_code == 200, page.text[:500]
        return page.text


def test_an_operator_registers_an_oidc_and_a_saml_upstream_and_the_broker_offers_them(federation: Federation,
                                                                                     browser: Browser) -> None:
    operator = console_operator(federation, browser, Role.OPERATOR)
    (federation.folder / "city-idp.secret").write_text(SECRET)
    registry = services(federation).registry
    before = _upstream_files(federation)

    preview = _upstream_preview(federation, browser, CITY_IDP)
    assert preview.status_code == 200 and 'id="apply"' in preview.text, preview.text[:2000]
    changes = lxml.html.fromstring(preview.text).get_element_by_id("changes").text_content()
    assert "https://idp.city.example" in changes and "client_secret_file" in changes
    assert "City staff" in preview.text and SECRET not in preview.text
    assert "city-idp" not in registry.snapshot.upstreams and _upstream_files(federation) == before

    applied = browser.submit(preview, form="apply")
    assert applied.status_code == 200 and "Identity provider registered" in applied.text, applied.text[:500]
    state = browser.submit(_upstream_preview(federation, browser, STATE_IDP), form="apply")
    assert "Identity provider registered" in state.text, state.text[:500]

    assert registry.snapshot.upstreams["city-idp"].issuer == "https://idp.city.example"
    assert registry.snapshot.upstreams["state-idp"].issuer == "https://idp.state.example/idp"
    assert SECRET not in "".join(_upstream_files(federation).values())
    choice = _login_choice(federation)
    assert "City staff" in choice and "State ID" in choice, choice[:1000]
    listing = browser.get(f"{federation.url}/console/apps/")
    table = lxml.html.fromstring(listing.text).get_element_by_id("upstream-table").text_content()
    assert "City staff" in table and "state-idp" in table
    reasons = [r.reason or "" for r in services(federation).audit.events(limit=50)
               if r.kind == AuditKind.REGISTRATION_CHANGED.value and r.downstream == "city-idp"]
    assert any(f"added upstream app by operator {operator}" in reason and "issuer" in reason for reason in reasons)

    remove = next(i for i, f in enumerate(listing.text.split("<form")[1:])
                  if 'value="state-idp"' in f and 'value="remove"' in f)
    browser.submit(listing, form=remove)
    assert "state-idp" not in registry.snapshot.upstreams and "state-idp.json" not in _upstream_files(federation)
    assert "city-idp" in registry.snapshot.upstreams


@pytest.mark.parametrize(("document", "problem"), [
    ({k: v for k, v in CITY_IDP.items() if k != "issuer"}, "issuer is required"),
    ({**CITY_IDP, "client_secret": SECRET}, "client_secret"),
    ({**STATE_IDP, "client_secret": SECRET}, "client_secret"),
    ({**CITY_IDP, "issuer": None, "preset": "no-such-provider"}, "unknown preset"),
])
def test_a_document_the_broker_would_not_use_is_refused_and_writes_nothing(federation: Federation,
                                                                          browser: Browser,
                                                                          document: dict[str, object],
                                                                          problem: str) -> None:
    console_operator(federation, browser, Role.ADMIN)
    (federation.folder / "city-idp.secret").write_text(SECRET)
    before = _upstream_files(federation)

    preview = _upstream_preview(federation, browser, {k: v for k, v in document.items() if v is not None})

    problems = lxml.html.fromstring(preview.text).get_element_by_id("problems").text_content()
    assert problem in problems and 'id="apply"' not in preview.text
    assert SECRET not in preview.text
    assert _upstream_files(federation) == before
    assert set(services(federation).registry.snapshot.upstreams) == {"op"}


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.AUDITOR])
def test_roles_without_manage_parties_cannot_register_upstreams_nor_change_settings(federation: Federation,
                                                                                    browser: Browser,
                                                                                    role: Role) -> None:
    console_operator(federation, browser, role)
    sp1 = federation.sps["sp1"].entity_id
    home = browser.get(f"{federation.url}/console/")
    token = home.text.split('name="csrf_token" value="')[1].split('"')[0]

    pages = [browser.get(f"{federation.url}/console/apps/upstreams/new"),
             browser.get(f"{federation.url}/console/apps/settings/", params={"party_id": sp1})]
    writes = [browser.post(f"{federation.url}{path}", {"csrf_token": token, **form},
                           initiator=f"{federation.url}/console/")
              for path, form in (("/console/apps/preview", {"kind": "upstream", "text": json.dumps(STATE_IDP)}),
                                 ("/console/apps/settings/preview", {"party_id": sp1, "display_name": "Taken"}),
                                 ("/console/apps/change", {"kind": "upstream", "party_id": "op",
                                                           "action": "remove"}))]

    assert [p.status_code for p in pages + writes] == [403] * 5
    assert set(services(federation).registry.snapshot.upstreams) == {"op"}
    assert services(federation).registry.snapshot.saml.sps[sp1].display_name != "Taken"


def _settings_form(federation: Federation, browser: Browser, sp: str = "sp1") -> requests.Response:
    page = browser.get(f"{federation.url}/console/apps/settings/",
                       params={"party_id": federation.sps[sp].entity_id})
    assert page.status_code == 200, page.text[:500]
    return page


def _settings_file(federation: Federation) -> Path:
    return federation.folder / "metadata" / "saml-sp" / "sp1.toml"


def test_an_operator_changes_a_saml_apps_name_and_claims_and_the_broker_serves_it_so(federation: Federation,
                                                                                    browser: Browser) -> None:
    operator = console_operator(federation, browser, Role.OPERATOR)
    app_settings(federation, "sp1", 'display_name = "Library"\nrequired_acr = "loa2"\n')
    sp1 = federation.sps["sp1"].entity_id

    form = _settings_form(federation, browser)
    fields = lxml.html.fromstring(form.text).get_element_by_id("app-settings")
    assert fields.inputs["display_name"].value == "Library" and fields.inputs["required_acr"].value == "loa2"
    preview = browser.submit(form, {"display_name": "Library loans", "receive": "email\ngiven_name",
                                    "required_acr": ""}, form="app-settings")
    assert preview.status_code == 200 and 'id="apply"' in preview.text, preview.text[:2000]
    changes = lxml.html.fromstring(preview.text).get_element_by_id("changes").text_content()
    assert "settings.display_name" in changes and "Library loans" in changes and "settings.required_acr" in changes
    assert services(federation).registry.snapshot.saml.sps[sp1].display_name == "Library"

    done = browser.submit(preview, form="apply")

    assert done.status_code == 200 and 'id="changed"' in done.text, done.text[:500]
    served = services(federation).registry.snapshot.saml.sps[sp1]
    assert served.display_name == "Library loans" and served.requested_claims == {"email", "given_name"}
    assert served.required_acr is None
    assert "required_acr" not in _settings_file(federation).read_text()
    reasons = [r.reason or "" for r in services(federation).audit.events(limit=50)
               if r.kind == AuditKind.REGISTRATION_CHANGED.value and r.downstream == sp1]
    assert any(f"changed by operator {operator}" in reason and "Library -> Library loans" in reason
               for reason in reasons), reasons


def test_bad_settings_come_back_linked_to_their_fields_and_change_nothing(federation: Federation,
                                                                         browser: Browser) -> None:
    console_operator(federation, browser, Role.ADMIN)
    app_settings(federation, "sp1", 'display_name = "Library"\n')
    before = _settings_file(federation).read_text()

    refused = browser.submit(_settings_form(federation, browser),
                             {"allowed_upstreams": "op", "default_upstream": "elsewhere",
                              "logo_uri": "http://library.example/logo.png"}, form="app-settings")

    assert refused.status_code == 400 and 'id="apply"' not in refused.text
    page = lxml.html.fromstring(refused.text)
    links = {a.get("href") for a in page.get_element_by_id("problems").iter("a")}
    assert {"#default_upstream", "#logo_uri"} <= links
    for key in ("default_upstream", "logo_uri"):
        field = page.get_element_by_id(key)
        assert field.get("aria-invalid") == "true" and field.get("aria-describedby") == f"error-{key}"
    assert page.get_element_by_id("default_upstream").value == "elsewhere"  # what was typed is kept
    assert _settings_file(federation).read_text() == before


def test_applying_settings_needs_a_recent_sign_in(federation: Federation, browser: Browser) -> None:
    console_operator(federation, browser, Role.OPERATOR)
    sp1 = federation.sps["sp1"].entity_id
    name = services(federation).registry.snapshot.saml.sps[sp1].display_name
    preview = browser.submit(_settings_form(federation, browser), {"display_name": "Too late"}, form="app-settings")
    assert 'id="apply"' in preview.text, preview.text[:1000]
    federation.set_clock(FixedClock(services(federation).clock.now() + timedelta(minutes=6)))

    again = browser.submit(preview, form="apply")

    assert "sign in again" in again.text
    assert services(federation).registry.snapshot.saml.sps[sp1].display_name == name != "Too late"
