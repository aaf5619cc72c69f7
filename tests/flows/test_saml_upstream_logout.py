"""Single Logout with a SAML IdP upstream (issue 4), end to end: a pysaml2 SP, the broker, a pysaml2 IdP.

SP-initiated: the app's LogoutRequest ends the broker's session; the broker logs the person out at the IdP
(a signed LogoutRequest with the NameID the IdP issued; the IdP checks it with pysaml2) and, once the IdP
answers, the app gets its LogoutResponse. IdP-initiated: the IdP's signed LogoutRequest ends the broker's
session, the app is notified, and the IdP gets a signed LogoutResponse (checked by pysaml2).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from saml2 import BINDING_HTTP_REDIRECT
from saml2.response import StatusError

from tests.flows.federation import Federation
from tests.flows.saml_logout_support import (
    SUCCESS,
    delivered,
    enable_slo,
    logout_request,
    sp_answers,
    sp_receives_request,
    sp_receives_response,
)
from tests.flows.saml_to_saml_support import through_city
from tests.flows.saml_upstream import CITIZEN, CityIdp, saml_federation
from tests.peers.browser import Browser

SP_HOST = "http://127.0.0.1:9/"  # where the test SPs "live": nothing listens, the test reads what is sent there


@pytest.fixture
def world(tmp_path: Path, key_folder: Path) -> Iterator[tuple[Federation, CityIdp]]:
    with saml_federation(tmp_path, key_folder) as (fed, city):
        enable_slo(fed, "sp1", "sp2")
        yield fed, city


def walk(browser: Browser, page: requests.Response, limit: int = 8) -> requests.Response:
    """Follow redirects one at a time until the next one would leave for a test SP (or there is none)."""
    for _ in range(limit):
        if page.status_code not in (302, 303) or page.headers["Location"].startswith(SP_HOST):
            return page
        page = browser.get(page.headers["Location"], follow=False)
    raise AssertionError("too many redirects")


def signed_in_at_sp1(fed: Federation, browser: Browser) -> tuple[object, str]:
    request_id, page = through_city(fed, browser)
    response = fed.sps["sp1"].parse(browser.form_fields(page)["SAMLResponse"], request_id)
    return response.assertion.subject.name_id, response.assertion.authn_statement[0].session_index


def test_app_logout_also_logs_out_at_the_idp(world: tuple[Federation, CityIdp], browser: Browser) -> None:
    fed, city = world
    name_id, session_index = signed_in_at_sp1(fed, browser)
    request_id, url, _ = logout_request(fed.sps["sp1"], name_id, session_index)

    page = walk(browser, browser.get(url, follow=False))

    assert city.app is not None
    logouts = city.app.extensions["test_idp"].logouts
    assert len(logouts) == 1 and logouts[0].name_id.text == CITIZEN.name_id  # pysaml2 verified its signature
    assert logouts[0].issuer.text == fed.url + "/saml2/sp/metadata"
    answer = sp_receives_response(fed.sps["sp1"], delivered(browser, page), request_id)
    assert answer == (SUCCESS, None)
    _, again = fed.login(browser, "sp1")
    assert "/upstream/city" in again.text  # no session left: the discovery page, not an answer


def test_idp_initiated_logout_ends_the_session_and_answers_the_idp(world: tuple[Federation, CityIdp],
                                                                   browser: Browser) -> None:
    fed, city = world
    assert city.idp is not None
    signed_in_at_sp1(fed, browser)
    url = city.idp.logout_request_url(fed.url + "/saml2/sp/slo/redirect", fed.url + "/saml2/sp/metadata",
                                      CITIZEN.name_id)

    page = walk(browser, browser.get(url, follow=False))  # the broker notifies sp1 first
    notice = delivered(browser, page)
    sp_request = sp_receives_request(fed.sps["sp1"], notice)
    answer_url, fields = sp_answers(fed.sps["sp1"], sp_request, notice.params.get("RelayState"))
    page = walk(browser, browser.post(answer_url, fields, follow=False) if fields
                else browser.get(answer_url, follow=False))
    to_idp = page.headers["Location"] if page.status_code in (302, 303) else page.url

    assert to_idp.startswith(city.idp.entity_id + "/slo/redirect?")
    params = dict(parse_qsl(urlsplit(to_idp).query))
    checked = city.idp.server.parse_logout_request_response(params["SAMLResponse"], BINDING_HTTP_REDIRECT)
    assert checked.response.status.status_code.value == SUCCESS
    assert params["RelayState"] == "idp-slo"
    _, again = fed.login(browser, "sp2")
    assert "/upstream/city" in again.text


def test_an_idp_logout_for_another_person_ends_nothing(world: tuple[Federation, CityIdp], browser: Browser) -> None:
    fed, city = world
    assert city.idp is not None
    signed_in_at_sp1(fed, browser)
    url = city.idp.logout_request_url(fed.url + "/saml2/sp/slo/redirect", fed.url + "/saml2/sp/metadata",
                                      "someone-else")

    page = browser.get(url, follow=False)

    params = dict(parse_qsl(urlsplit(page.headers["Location"]).query))
    with pytest.raises(StatusError, match="status:Requester"):  # pysaml2 verified the signature, then the status
        city.idp.server.parse_logout_request_response(params["SAMLResponse"], BINDING_HTTP_REDIRECT)
    request_id, still = fed.login(browser, "sp2")
    assert fed.sps["sp2"].parse(browser.form_fields(still)["SAMLResponse"], request_id) is not None


def test_an_unsigned_or_replayed_idp_logout_is_refused(world: tuple[Federation, CityIdp], browser: Browser) -> None:
    fed, city = world
    assert city.idp is not None
    signed_in_at_sp1(fed, browser)
    url = city.idp.logout_request_url(fed.url + "/saml2/sp/slo/redirect", fed.url + "/saml2/sp/metadata",
                                      "someone-else")
    parts = urlsplit(url)
    unsigned = f"{parts.scheme}://{parts.netloc}{parts.path}?" + "&".join(
        p for p in parts.query.split("&") if not p.startswith(("Signature=", "SigAlg=")))

    assert browser.get(unsigned, follow=False).status_code == 400
    assert browser.get(url, follow=False).status_code in (302, 303)  # answered: a LogoutResponse to the IdP
    replayed = browser.get(url, follow=False)
    assert replayed.status_code == 400 and "Traceback" not in replayed.text
