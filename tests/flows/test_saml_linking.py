"""Linking a city's SAML IdP to an account first made with an OpenID provider, from the portal (issues 4 and 5).

Real peers: the demo OpenID provider "op", a pysaml2 IdP "city" (cross-site), a pysaml2 SP. The citizen signs in
with "op", links "city" from the portal (a signed AuthnRequest; the IdP's answer comes back through the ACS as a
link journey, never as a login), and from then on signing in with either reaches the same account.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lxml.html  # type: ignore[import-untyped]
import pytest
import requests

from broker.storage.tables import LinkedIdentityRow
from tests.flows.federation import Federation
from tests.flows.linking_support import confirm_link
from tests.flows.saml_upstream import CityIdp, saml_federation
from tests.peers.browser import Browser
from tests.security.attack_support import login_with_hint


@pytest.fixture
def world(tmp_path: Path, key_folder: Path) -> Iterator[tuple[Federation, CityIdp]]:
    with saml_federation(tmp_path, key_folder) as running:
        yield running


def link_city(fed: Federation, browser: Browser, *, confirm: bool = True) -> requests.Response:
    page = browser.get(fed.url + "/account/link")
    actions = [form.action for form in lxml.html.document_fromstring(page.text).forms]
    assert "/account/link/city" in actions, page.text[:800]
    page = browser.submit(page, form=actions.index("/account/link/city"))
    while browser.is_self_submitting(page):  # the IdP's POST to the ACS, the broker's same-site repost
        page = browser.auto_submit(page)
    return confirm_link(browser, page) if confirm else page


def test_a_linked_saml_idp_signs_in_to_the_same_account(world: tuple[Federation, CityIdp], browser: Browser) -> None:
    fed, city = world
    via_op = login_with_hint(fed, browser, "op").get_subject().text

    done = link_city(fed, browser)

    assert done.status_code == 200 and "City ID" in done.text, done.text[:500]
    assert len(city.seen) == 1 and city.seen[0].issuer == fed.url + "/saml2/sp/metadata"
    assert city.seen[0].force_authn  # a link is proven by a fresh sign-in (SAML Core §3.4.1)
    assert fed.accounts() == 1
    with Browser() as fresh:
        via_city = login_with_hint(fed, fresh, "city").get_subject().text
    assert via_city == via_op and fed.accounts() == 1


def test_a_link_answer_cannot_be_used_as_a_login(world: tuple[Federation, CityIdp], browser: Browser) -> None:
    fed, _ = world
    login_with_hint(fed, browser, "op")
    page = browser.get(fed.url + "/account/link")
    actions = [form.action for form in lxml.html.document_fromstring(page.text).forms]
    at_idp = browser.submit(page, form=actions.index("/account/link/city"))
    answer = browser.form_fields(at_idp)  # the IdP's signed answer to the link request
    with Browser() as other:  # carried into another browser: no link journey and no login there
        refused = other.post(fed.url + "/saml2/sp/acs", answer)
        while other.is_self_submitting(refused):
            refused = other.auto_submit(refused)

    assert refused.status_code == 400 and "Traceback" not in refused.text
    assert fed.accounts() == 1


def test_an_idp_that_ignores_force_authn_links_nothing(world: tuple[Federation, CityIdp], browser: Browser) -> None:
    """The IdP answers the link's ForceAuthn request from a sign-in an hour old (a careless IdP, or another
    person's session left in a shared browser): the AuthnInstant is before the request, nothing is linked."""
    fed, city = world
    login_with_hint(fed, browser, "op")
    assert city.app is not None
    city.app.extensions["test_idp"].reuses_sign_in_from = 3600
    page = link_city(fed, browser, confirm=False)
    assert page.status_code == 502 and "Traceback" not in page.text, page.text[:500]
    assert "Link these sign-in methods?" not in page.text
    assert fed.count(LinkedIdentityRow) == 1
