"""The operator's settings of legacy SAML apps, end to end (issue 14, parts 3 and 4).

One broker serves a SAML IdP (the pysaml2 peer "city", also in the IdP directory) and an OpenID provider (the
authlib demo provider "op"). A legacy app cannot add ``idp_hint`` to its requests; its settings beside its
metadata pin it to its upstream, and an app (or OIDC client) that can reach only one upstream never sees the
discovery page. An app whose metadata lists no RequestedAttribute receives what the operator configured,
through the consent page.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin

import pytest

from broker.core.assurance import EIDAS_LOW, EIDAS_SUBSTANTIAL
from tests.flows.app_settings import (
    add_sp,
    answer_consent,
    app_settings,
    app_sign_in,
    form_index,
    release_policy,
    to_the_sp,
)
from tests.flows.federation import saml_status
from tests.flows.oidc_peers import relying_party
from tests.flows.saml_upstream import CITIZEN, saml_federation
from tests.peers.browser import Browser
from tests.peers.saml_idp import IdpUser
from tests.registry.aggregate import entity_id, make_aggregate, make_entity_certs

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
STATUS = "urn:oasis:names:tc:SAML:2.0:status:"


def _discovery_seen(browser: Browser) -> bool:
    return any("/login/" in url for url in browser.history)


def test_each_saml_app_reaches_only_its_upstream_and_never_the_discovery_page(
        tmp_path: Path, key_folder: Path, browser: Browser) -> None:
    with saml_federation(tmp_path, key_folder) as (fed, city):
        assert city.idp is not None
        app_settings(fed, "sp1", 'display_name = "App A"\nallowed_upstreams = ["op"]\n')
        # by the IdP's entity id, as an operator copying it from the IdP's metadata would
        app_settings(fed, "sp2", f'display_name = "App B"\nallowed_upstreams = ["{city.idp.entity_id}"]\n')

        request_a, location = fed.sps["sp1"].redirect_request()
        sent = browser.get(location, follow=False)
        assert sent.headers["Location"].startswith(fed.op.url + "/")  # straight to the OpenID provider
        page = to_the_sp(browser, browser.get(urljoin(fed.url, sent.headers["Location"])))
        answer_a = fed.sps["sp1"].parse(browser.form_fields(page)["SAMLResponse"], request_a)
        assert answer_a.get_identity()["mail"] == ["anna@example.org"]

        # the same browser's SSO session came from "op", which app B may not use: B goes to its own IdP
        request_b, location = fed.sps["sp2"].redirect_request()
        sent = browser.get(location, follow=False)
        assert sent.headers["Location"].startswith(city.idp.entity_id + "/")  # straight to the SAML IdP
        page = to_the_sp(browser, browser.get(sent.headers["Location"]))
        answer_b = fed.sps["sp2"].parse(browser.form_fields(page)["SAMLResponse"], request_b)
        assert answer_b.get_identity()["mail"] == ["aino@city.example"]

        # the SSO session now came from "city", named in B's list by its entity id: it answers B's next login
        request_b, location = fed.sps["sp2"].redirect_request()
        page = browser.get(location)
        assert fed.sps["sp2"].parse(browser.form_fields(page)["SAMLResponse"], request_b) is not None

        assert not _discovery_seen(browser)
        assert fed.provider.hits("authorize") == 1 and len(city.seen) == 1


def test_a_hint_for_another_upstream_is_refused_and_a_default_replaces_the_discovery_page(
        tmp_path: Path, key_folder: Path, browser: Browser) -> None:
    with saml_federation(tmp_path, key_folder) as (fed, city):
        assert city.idp is not None
        app_settings(fed, "sp1", 'allowed_upstreams = ["op"]\n')
        _, location = fed.sps["sp1"].redirect_request()
        refused = browser.get(location + "&idp_hint=city")
        assert saml_status(browser.form_fields(refused)) == (STATUS + "Responder", STATUS + "NoAvailableIDP")

        app_settings(fed, "sp2", 'default_upstream = "city"\n')  # may use every upstream; city unless told
        _, location = fed.sps["sp2"].redirect_request()
        assert browser.get(location, follow=False).headers["Location"].startswith(city.idp.entity_id + "/")
        _, location = fed.sps["sp2"].redirect_request()
        hinted = browser.get(location + "&idp_hint=op", follow=False)  # the request's own hint comes first
        assert hinted.headers["Location"].startswith(fed.op.url + "/")
        assert not _discovery_seen(browser)


@pytest.mark.parametrize("federation_idps", [0, 12])
def test_an_oidc_client_limited_to_one_upstream_sees_no_discovery_page_beside_saml_idps(
        tmp_path: Path, key_folder: Path, browser: Browser, federation_idps: int) -> None:
    aggregate = make_aggregate(federation_idps, None, make_entity_certs(1)) if federation_idps else None
    with saml_federation(tmp_path, key_folder, more_metadata=aggregate) as (fed, _), \
            relying_party(fed, "permits-web", allowed_upstreams=["op"], client_name="Permits") as rp:
        # the city IdP's metadata, and a federation's
        assert fed.app.extensions["broker"].registry.directory_size() == 1 + federation_idps

        page = app_sign_in(browser, rp)

        assert page.status_code == 200 and rp.last.error is None, page.text
        assert rp.last.userinfo is not None and rp.last.userinfo["email"] == "anna@example.org"
        assert not _discovery_seen(browser)


def test_an_app_without_requested_attributes_receives_what_the_operator_configured_after_consent(
        tmp_path: Path, key_folder: Path, browser: Browser) -> None:
    with saml_federation(tmp_path, key_folder) as (fed, _):
        release_policy(fed, 'version = "p1"\n')  # every app asks for consent
        sp = add_sp(fed, key_folder, "sp3", requested=())
        app_settings(fed, "sp3", 'display_name = "Library"\nallowed_upstreams = ["op"]\n'
                                 'receive = ["email", "given_name", "family_name"]\nrequired = ["email"]\n')

        request_id, page = fed.login(browser, "sp3")

        assert "Share your information with Library?" in page.text
        answer = to_the_sp(browser, answer_consent(browser, page, "allow", ticked=("given_name",)))
        identity = sp.parse(browser.form_fields(answer)["SAMLResponse"], request_id).get_identity()
        # email (required) and the ticked given_name; family_name was offered and left unticked
        assert identity == {"mail": ["anna@example.org"], "givenName": ["Anna"]}


def test_without_settings_such_an_app_receives_nothing(tmp_path: Path, key_folder: Path,
                                                      browser: Browser) -> None:
    with saml_federation(tmp_path, key_folder) as (fed, _):
        sp = add_sp(fed, key_folder, "sp3", requested=())
        app_settings(fed, "sp3", 'allowed_upstreams = ["op"]\n')

        request_id, page = fed.login(browser, "sp3")

        assert sp.parse(browser.form_fields(page)["SAMLResponse"], request_id).get_identity() == {}


@pytest.mark.parametrize(("has", "answered"), [(EIDAS_SUBSTANTIAL, None), (EIDAS_LOW, STATUS + "NoAuthnContext")])
def test_the_operators_minimum_assurance_goes_upstream_for_an_app_that_asks_for_none(
        tmp_path: Path, key_folder: Path, browser: Browser, has: str, answered: str | None) -> None:
    person = IdpUser(CITIZEN.name_id, CITIZEN.attributes, authn_contexts=(has,))
    with saml_federation(tmp_path, key_folder, user=person) as (fed, city):
        app_settings(fed, "sp2", f'allowed_upstreams = ["city"]\nrequired_acr = "{EIDAS_SUBSTANTIAL}"\n')

        request_id, page = fed.login(browser, "sp2")  # the app's request names no RequestedAuthnContext

        page = to_the_sp(browser, page)
        assert city.seen[0].requested_contexts == (EIDAS_SUBSTANTIAL,)
        if answered is None:
            response = fed.sps["sp2"].parse(browser.form_fields(page)["SAMLResponse"], request_id)
            assert response.assertion.authn_statement[0].authn_context.authn_context_class_ref.text == has
        else:
            assert saml_status(browser.form_fields(page))[1] == answered
            assert fed.accounts() == 0


def test_the_discovery_page_offers_exactly_the_upstreams_an_app_names(tmp_path: Path, key_folder: Path,
                                                                      browser: Browser) -> None:
    aggregate = make_aggregate(30, None, make_entity_certs(1), names={7: ("City of Québec", "Ville de Québec")})
    with saml_federation(tmp_path, key_folder, more_metadata=aggregate) as (fed, _):
        app_settings(fed, "sp1", f'display_name = "App A"\nallowed_upstreams = ["op", "{entity_id(7)}"]\n')

        _, page = fed.login(browser, "sp1")

        # a federation this large is searched, not listed; the IdP the app names is offered without a search
        assert "App A asks you to sign in" in page.text
        assert "Sign in with Test OpenID provider" in page.text and "Sign in with City of Québec" in page.text
        assert page.text.count("Sign in with") == 2
        chosen = browser.submit(page, form=form_index(page, "/idp"), follow=False)
        assert chosen.headers["Location"].startswith("https://idp7.example.org/sso/redirect?")


def test_with_one_registered_saml_idp_every_app_goes_straight_there(tmp_path: Path, key_folder: Path,
                                                                   browser: Browser) -> None:
    with saml_federation(tmp_path, key_folder) as (fed, city):
        assert city.idp is not None
        (fed.folder / "metadata" / "upstreams" / "op.json").unlink()  # the city's IdP is the only upstream
        fed.app.extensions["broker"].registry.reload()

        request_id, page = fed.login(browser, "sp1")  # an app with no settings at all

        page = to_the_sp(browser, page)
        identity = fed.sps["sp1"].parse(browser.form_fields(page)["SAMLResponse"], request_id).get_identity()
        assert identity["mail"] == ["aino@city.example"]
        assert not _discovery_seen(browser)
