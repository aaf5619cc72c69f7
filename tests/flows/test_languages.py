"""The language of a real login (issue 20, "English only"; ``broker.web.locale``): an OpenID Connect app's
``ui_locales`` (OIDC Core §3.1.2.1) beats the browser's ``Accept-Language`` on every page of that login, through
the sign-in at the upstream (where the broker renews the browser's session); the switch in the header changes the
language in the middle of the login without ending it, and its choice beats ``ui_locales`` from then on."""

from __future__ import annotations

import re

import lxml.html  # type: ignore[import-untyped]
import requests

from tests.flows.app_settings import answer_consent, release_policy
from tests.flows.federation import Federation
from tests.flows.oidc_peers import relying_party
from tests.peers.browser import Browser


def _language(page: requests.Response) -> tuple[str, str]:
    found = re.search(r'<html lang="([^"]*)" dir="([^"]*)">', page.text)
    assert found, page.text[:300]
    return found.group(1), found.group(2)


def _switch_to(browser: Browser, page: requests.Response, code: str) -> requests.Response:
    """Follow the header's link to ``code``, as a person without JavaScript would."""
    links = lxml.html.fromstring(page.text).xpath(f'//nav[@class="languages"]//a[@hreflang="{code}"]')
    assert len(links) == 1
    return browser.get(requests.compat.urljoin(page.url, links[0].get("href")))


def test_ui_locales_then_the_switch_choose_the_language_of_a_login(federation: Federation, browser: Browser) -> None:
    release_policy(federation, 'version = "p1"\n')  # every app asks for consent: a page in the middle of the login
    browser.session.headers["Accept-Language"] = "de-DE,de;q=0.9,en;q=0.5"
    with relying_party(federation) as rp:
        consent = browser.get(f"{rp.url}/login", params={"ui_locales": "tlh ar-EG de"})
        assert consent.status_code == 200 and 'name="decision"' in consent.text, consent.text[:300]
        assert _language(consent) == ("ar", "rtl")  # the app's first supported choice, not the browser's German

        french = _switch_to(browser, consent, "fr")
        assert french.url == consent.url  # back to the very page: the login goes on
        assert _language(french) == ("fr", "ltr") and 'name="decision"' in french.text
        current = lxml.html.fromstring(french.text).xpath('//nav[@class="languages"]//a[@aria-current="true"]')
        assert [a.get("hreflang") for a in current] == ["fr"]

        answer_consent(browser, french, "allow")
        assert rp.last.error is None and rp.last.id_token_claims is not None

        # the switch's choice outlasts the login and beats a later login's ui_locales (answered at once: consent
        # was given), on every page of the broker
        browser.get(f"{rp.url}/login", params={"ui_locales": "ar"})
        assert rp.last.error is None
        assert _language(browser.get(f"{federation.url}/account/")) == ("fr", "ltr")
