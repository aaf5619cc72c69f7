"""Attacks on the broker's Assertion Consumer Service, end to end with a real pysaml2 IdP upstream.

The message-level attacks (signature wrapping, foreign keys, XXE, conditions...) are refused by the verifier
(``test_attack_saml_upstream_response.py``); here they arrive through the browser and the web layer, which must
turn each refusal into the right answer to the right party and store nothing: a SAML error Response to the
app that asked, or a readable page when no pending login is known.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import lxml.html  # type: ignore[import-untyped]
import pytest
import requests

from tests.flows.federation import Federation, saml_status
from tests.flows.saml_to_saml_support import to_the_app
from tests.flows.saml_upstream import CITIZEN, CityIdp, saml_federation
from tests.peers.browser import Browser
from tests.security.attack_support import AUTHN_FAILED, RESPONDER, assert_nothing_stored, assert_page

ACS = "/saml2/sp/acs"


@pytest.fixture
def world(tmp_path: Path, key_folder: Path) -> Iterator[tuple[Federation, CityIdp]]:
    with saml_federation(tmp_path, key_folder) as running:
        yield running


def at_the_acs(fed: Federation, browser: Browser, sp: str = "sp1") -> tuple[str, requests.Response]:
    """Start a login at ``sp``, pick the city IdP, stop at the IdP's page that posts to the broker's ACS."""
    request_id, page = fed.login(browser, sp)
    forms = lxml.html.fromstring(page.text).forms
    page = browser.submit(page, form=next(i for i, f in enumerate(forms) if "/upstream/city" in (f.action or "")))
    assert browser.form_fields(page).keys() >= {"SAMLResponse", "RelayState"}
    return request_id, page


def post_to_acs(fed: Federation, browser: Browser, fields: dict[str, str]) -> requests.Response:
    return to_the_app(browser, browser.post(fed.url + ACS, fields))


def test_a_tampered_assertion_is_refused_to_the_app(world: tuple[Federation, CityIdp], browser: Browser) -> None:
    fed, _ = world
    _, page = at_the_acs(fed, browser)
    fields = browser.form_fields(page)
    xml = base64.b64decode(fields["SAMLResponse"]).replace(b"aino@city.example", b"mallory@city.example")
    answer = post_to_acs(fed, browser, {**fields, "SAMLResponse": base64.b64encode(xml).decode()})

    assert saml_status(browser.form_fields(answer)) == (RESPONDER, AUTHN_FAILED)
    assert_nothing_stored(fed)


def test_an_answer_to_another_request_is_refused(world: tuple[Federation, CityIdp], browser: Browser) -> None:
    """The IdP's answer to request 1 posted with the RelayState of request 2 (InResponseTo does not match)."""
    fed, _ = world
    _, first = at_the_acs(fed, browser)
    _, second = at_the_acs(fed, browser)
    swapped = {**browser.form_fields(second), "SAMLResponse": browser.form_fields(first)["SAMLResponse"]}
    answer = post_to_acs(fed, browser, swapped)

    assert saml_status(browser.form_fields(answer)) == (RESPONDER, AUTHN_FAILED)
    assert_nothing_stored(fed)


def test_an_answer_carried_into_another_browser_is_refused(world: tuple[Federation, CityIdp],
                                                           browser: Browser) -> None:
    """Login CSRF: the attacker's own IdP answer delivered into the victim's browser signs nobody in."""
    fed, _ = world
    _, page = at_the_acs(fed, browser)
    with Browser() as victim:
        answer = post_to_acs(fed, victim, browser.form_fields(page))

        assert_page(answer, 400)
    assert_nothing_stored(fed)


def test_an_idp_error_status_reaches_the_app(tmp_path: Path, key_folder: Path, browser: Browser) -> None:
    """The IdP refuses (NoAuthnContext): the app gets the matching status, not a generic failure."""
    from tests.peers.saml_idp import IdpUser

    nobody = IdpUser(CITIZEN.name_id, CITIZEN.attributes, authn_contexts=())
    with saml_federation(tmp_path, key_folder, user=nobody) as (fed, _):
        _, page = at_the_acs(fed, browser)
        answer = to_the_app(browser, page)

        assert saml_status(browser.form_fields(answer)) == (
            RESPONDER, "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext")
        assert_nothing_stored(fed)


def test_garbage_and_oversized_posts_get_a_page(world: tuple[Federation, CityIdp], browser: Browser) -> None:
    fed, _ = world
    for value in ("not base64 at all!", base64.b64encode(b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>").decode(),
                  base64.b64encode(b"<x>" + b"a" * (300 * 1024) + b"</x>").decode()):
        answer = browser.post(fed.url + ACS, {"SAMLResponse": value, "RelayState": "", "_same_site": "1"})

        assert answer.status_code in (400, 413), answer.status_code
        assert "Traceback" not in answer.text
    assert_nothing_stored(fed)


def test_a_response_for_another_acs_is_refused(world: tuple[Federation, CityIdp], browser: Browser) -> None:
    """An answer the IdP made for delivery elsewhere (Destination and Recipient of another ACS) is not accepted
    here, even for the right request and correctly signed."""
    fed, city = world
    assert city.idp is not None
    _, page = at_the_acs(fed, browser)
    fields = browser.form_fields(page)
    sent = base64.b64decode(fields["SAMLResponse"]).decode()
    request_id = sent.split('InResponseTo="', 1)[1].split('"', 1)[0]
    foreign = city.idp.respond(destination="https://other-sp.example/acs", in_response_to=request_id,
                               sp_entity_id=fed.url + "/saml2/sp/metadata", name_id=CITIZEN.name_id)
    assert b"https://other-sp.example/acs" in base64.b64decode(foreign)
    answer = post_to_acs(fed, browser, {**fields, "SAMLResponse": foreign})

    assert saml_status(browser.form_fields(answer)) == (RESPONDER, AUTHN_FAILED)
    assert_nothing_stored(fed)
