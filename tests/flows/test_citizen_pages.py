"""Citizens see apps by name, never by entity id or address (issue 14, part 5).

One walk through every page a citizen meets with two SAML apps (one named by the operator's settings, one with
nothing but its entity id in its metadata) and an OpenID Connect app: discovery, consent, the portal (home,
apps, consents with a withdrawal, sessions, identities, profile, linking, deletion's confirmation), the link
journey through the city's SAML IdP, the sign-out confirmation and progress pages, and error pages. No page's
HTML carries an app's entity id, its endpoint addresses or the OIDC app's URLs. (The self-posting page that
carries a SAML Response to the app must name the app's ACS as its form action; it is not a page to read.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.flows.app_settings import (
    answer_consent,
    app_settings,
    form_action,
    form_index,
    release_policy,
    to_the_sp,
)
from tests.flows.oidc_peers import relying_party
from tests.flows.saml_upstream import saml_federation
from tests.peers.browser import Browser

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
LOGO = "https://permits.city.example.org/logo.png"
POLICY = "https://permits.city.example.org/privacy"


def test_no_citizen_page_shows_an_apps_entity_id_or_address(tmp_path: Path, key_folder: Path,
                                                           browser: Browser) -> None:
    with saml_federation(tmp_path, key_folder) as (fed, city), \
            relying_party(fed, "permits-web", client_name="Permit portal", logo_uri=LOGO) as rp:
        release_policy(fed, 'version = "p1"\n')  # every app asks for consent
        app_settings(fed, "sp1", f'display_name = "Parking permits"\nlogo_uri = "{LOGO}"\npolicy_uri = "{POLICY}"\n')
        pages: dict[str, requests.Response] = {}

        # a SAML app the operator named: discovery, then consent
        _, location = fed.sps["sp1"].redirect_request()
        pages["discovery"] = discovery = browser.get(location)
        assert "Parking permits asks you to sign in" in discovery.text and LOGO in discovery.text
        pages["consent saml"] = consent = browser.submit(discovery, form=form_index(discovery, "/upstream/op"))
        assert "Share your information with Parking permits?" in consent.text
        assert POLICY in consent.text and "img-src 'self' data: https:" in consent.headers["Content-Security-Policy"]
        assert "SAMLResponse" in browser.form_fields(to_the_sp(browser, answer_consent(browser, consent, "allow")))

        # a SAML app whose metadata has no name at all: its host, never its entity id
        _, location = fed.sps["sp2"].redirect_request()
        pages["consent unnamed saml"] = consent = browser.get(location)
        assert "Share your information with 127.0.0.1?" in consent.text
        to_the_sp(browser, answer_consent(browser, consent, "allow"))

        # an OpenID Connect app: its client_name and logo_uri
        page = browser.get(f"{rp.url}/login")
        pages["consent oidc"] = page
        assert "Share your information with Permit portal?" in page.text and LOGO in page.text
        answer_consent(browser, page, "allow")
        assert rp.last.error is None

        for path in ("/account/", "/account/apps", "/account/consents", "/account/sessions", "/account/identities",
                     "/account/profile", "/account/link", "/account/delete"):
            pages[path] = browser.get(fed.url + path)
        assert "Parking permits" in pages["/account/apps"].text and "Permit portal" in pages["/account/apps"].text
        for path in ("/account/apps", "/account/consents"):  # with their logos
            assert LOGO in pages[path].text and "https:" in pages[path].headers["Content-Security-Policy"]
        assert "City ID" not in pages["/account/sessions"].text and "Test OpenID provider" in pages[
            "/account/sessions"].text  # the upstream by its name too
        consents = pages["/account/consents"]
        pages["withdrawn"] = withdrawn = browser.submit(consents, form=form_index(consents, "/consents/withdraw"))
        assert withdrawn.status_code == 200 and len(withdrawn.text) < len(consents.text)

        # the link journey through the city's SAML IdP
        linking = pages["/account/link"]
        page = browser.submit(linking, form=form_index(linking, "/link/city"))
        pages["link done"] = to_the_sp(browser, page)
        assert "City ID" in pages["link done"].text

        # sign-out pages: the OIDC app's confirmation (no id_token_hint), SAML logout's progress
        pages["logout confirm"] = confirm = browser.get(f"{fed.url}/oidc/logout", params={"client_id": rp.client_id})
        assert "Permit portal asks to sign you out" in confirm.text and LOGO in confirm.text
        pages["logout progress"] = browser.get(f"{fed.url}/saml2/idp/slo/continue")

        # error pages
        pages["error login"] = browser.get(f"{fed.url}/login/not-a-handle")
        pages["error consent"] = browser.post(f"{fed.url}/consent/not-a-handle", {"decision": "allow"},
                                              initiator=fed.url + "/")
        assert pages["error login"].status_code >= 400

        assert city.idp is not None
        forbidden = [sp.entity_id for sp in fed.sps.values()] + [sp.acs_url for sp in fed.sps.values()] + [
            "127.0.0.1:9/", rp.redirect_uri, rp.url, "permits-web"]
        for name, page in pages.items():
            assert page.text.strip(), name
            shown = [text for text in forbidden if text in page.text]
            assert shown == [], f"{name} ({page.url}) shows {shown}"
        assert form_action(to_the_sp(browser, browser.get(fed.sps["sp1"].redirect_request()[1]))) \
            == fed.sps["sp1"].acs_url  # the walk reached the apps; only their answers carry their addresses
