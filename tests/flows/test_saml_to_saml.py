"""A legacy SAML app signs a citizen in through a city's SAML IdP, end to end (SAML -> broker -> SAML).

Real peers: a pysaml2 SP and a pysaml2 IdP (both with the stock ``xmlsec1`` backend, so every signature the
broker makes is checked by the reference implementation), the broker on its own HTTP server, the IdP on
another site so that its answers arrive as cross-site POSTs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from saml2.saml import NAMEID_FORMAT_PERSISTENT, AuthnContextClassRef
from saml2.samlp import RequestedAuthnContext

from broker.core.assurance import EIDAS_HIGH, EIDAS_LOW, EIDAS_SUBSTANTIAL
from broker.storage.tables import LinkedIdentityRow
from tests.databases import BACKENDS
from tests.flows.federation import Federation, saml_status
from tests.flows.saml_to_saml_support import form_index, through_city, to_the_app
from tests.flows.saml_upstream import CITIZEN, CityIdp, saml_federation
from tests.peers.browser import Browser
from tests.peers.saml_idp import IdpUser

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
STATUS = "urn:oasis:names:tc:SAML:2.0:status:"


@pytest.fixture(params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path: Path, key_folder: Path) -> Iterator[tuple[Federation, CityIdp]]:
    with saml_federation(tmp_path, key_folder, request.param) as running:
        yield running


def test_first_login_through_the_city_idp(world: tuple[Federation, CityIdp], browser: Browser) -> None:
    fed, city = world
    request_id, page = through_city(fed, browser)

    response = fed.sps["sp1"].parse(browser.form_fields(page)["SAMLResponse"], request_id)
    identity = response.get_identity()
    assert identity["mail"] == ["aino@city.example"]
    assert identity["givenName"] == ["Aino"]
    assert identity["sn"] == ["Kallio"]
    subject = response.get_subject()
    assert subject.format == NAMEID_FORMAT_PERSISTENT and subject.text != CITIZEN.name_id
    assert fed.accounts() == 1 and fed.count(LinkedIdentityRow) == 1
    seen = city.seen[0]
    assert seen.issuer == fed.url + "/saml2/sp/metadata"  # the IdP verified the signed Redirect request


def test_an_address_the_operator_does_not_vouch_for_is_not_released(tmp_path: Path, key_folder: Path,
                                                                     browser: Browser) -> None:
    with saml_federation(tmp_path, key_folder, options={}) as (fed, _):
        request_id, page = through_city(fed, browser)
        identity = fed.sps["sp1"].parse(browser.form_fields(page)["SAMLResponse"], request_id).get_identity()

        assert "mail" not in identity and identity["givenName"] == ["Aino"]


def test_sso_answers_a_second_app_without_the_idp(world: tuple[Federation, CityIdp], browser: Browser) -> None:
    fed, city = world
    through_city(fed, browser)
    request_id, page = fed.login(browser, "sp2")

    response = fed.sps["sp2"].parse(browser.form_fields(page)["SAMLResponse"], request_id)
    assert response.get_identity()["mail"] == ["aino@city.example"]
    assert len(city.seen) == 1


def test_a_new_browser_reaches_the_same_account(world: tuple[Federation, CityIdp], browser: Browser) -> None:
    fed, _ = world
    first_id, first = through_city(fed, browser)
    first_subject = fed.sps["sp1"].parse(browser.form_fields(first)["SAMLResponse"], first_id).get_subject().text
    with Browser() as other:
        second_id, second = through_city(fed, other)
        second_subject = fed.sps["sp1"].parse(other.form_fields(second)["SAMLResponse"],
                                              second_id).get_subject().text

    assert first_subject == second_subject and fed.accounts() == 1


def _requested(*classes: str, comparison: str = "minimum") -> RequestedAuthnContext:
    return RequestedAuthnContext(authn_context_class_ref=[AuthnContextClassRef(text=c) for c in classes],
                                 comparison=comparison)


def test_required_assurance_goes_upstream_and_comes_back(tmp_path: Path, key_folder: Path, browser: Browser) -> None:
    strong = IdpUser(CITIZEN.name_id, CITIZEN.attributes, authn_contexts=(EIDAS_SUBSTANTIAL,))
    with saml_federation(tmp_path, key_folder, user=strong) as (fed, city):
        request_id, page = through_city(fed, browser, requested_authn_context=_requested(EIDAS_SUBSTANTIAL))
        response = fed.sps["sp1"].parse(browser.form_fields(page)["SAMLResponse"], request_id)

        assert city.seen[0].requested_contexts == (EIDAS_SUBSTANTIAL,)
        assert response.assertion.authn_statement[0].authn_context.authn_context_class_ref.text == EIDAS_SUBSTANTIAL


def test_an_idp_that_cannot_meet_the_assurance_is_refused(tmp_path: Path, key_folder: Path,
                                                          browser: Browser) -> None:
    weak = IdpUser(CITIZEN.name_id, CITIZEN.attributes, authn_contexts=(EIDAS_LOW,))
    with saml_federation(tmp_path, key_folder, user=weak) as (fed, _):
        _, page = through_city(fed, browser, requested_authn_context=_requested(EIDAS_HIGH))

        assert saml_status(browser.form_fields(page)) == (STATUS + "Responder", STATUS + "NoAuthnContext")
        assert fed.accounts() == 0


def test_a_replayed_response_is_refused(world: tuple[Federation, CityIdp], browser: Browser) -> None:
    fed, _ = world
    _, page = fed.login(browser, "sp1")
    page = browser.submit(page, form=form_index(page, "/upstream/city"))
    idp_answer = browser.form_fields(page)  # the IdP's POST to the broker's ACS
    to_the_app(browser, page)
    with Browser() as attacker:
        replayed = attacker.post(fed.url + "/saml2/sp/acs", idp_answer)
        replayed = to_the_app(attacker, replayed)

    assert replayed.status_code == 400
    assert "Traceback" not in replayed.text
    assert fed.accounts() == 1


def test_an_unsolicited_response_is_refused_by_default(world: tuple[Federation, CityIdp], browser: Browser) -> None:
    fed, city = world
    assert city.idp is not None
    unsolicited = city.idp.respond(destination=fed.url + "/saml2/sp/acs", in_response_to=None,
                                   sp_entity_id=fed.url + "/saml2/sp/metadata", name_id=CITIZEN.name_id)

    page = browser.post(fed.url + "/saml2/sp/acs", {"SAMLResponse": unsolicited, "RelayState": ""})
    page = to_the_app(browser, page)

    assert page.status_code == 400 and fed.accounts() == 0


def test_idp_initiated_login_when_allowed_lands_in_the_portal(tmp_path: Path, key_folder: Path,
                                                              browser: Browser) -> None:
    with saml_federation(tmp_path, key_folder, options={"allow_unsolicited": "true"}) as (fed, city):
        assert city.idp is not None
        unsolicited = city.idp.respond(destination=fed.url + "/saml2/sp/acs", in_response_to=None,
                                       sp_entity_id=fed.url + "/saml2/sp/metadata", name_id=CITIZEN.name_id)
        page = to_the_app(browser, browser.post(fed.url + "/saml2/sp/acs", {"SAMLResponse": unsolicited}))

        assert page.status_code == 200 and page.url == fed.url + "/account/"
        assert fed.accounts() == 1


def test_sp_metadata_is_signed_and_names_acs_and_keys(world: tuple[Federation, CityIdp]) -> None:
    fed, _ = world
    xml = requests.get(fed.url + "/saml2/sp/metadata", timeout=10).text

    assert 'AuthnRequestsSigned="true"' in xml
    assert fed.url + "/saml2/sp/acs" in xml
    assert 'use="encryption"' in xml and 'use="signing"' in xml
    assert "SignatureValue" in xml
