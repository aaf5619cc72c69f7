"""The portal says who you are and lets you leave (issue 20): "Signed in as <name> with <method>" on every portal
page, "Sign out" (this browser) beside "Sign out everywhere", the current menu item marked ``aria-current``, the
sessions page naming a browser in words, and the broker's home page leading to the portal.
"""

from __future__ import annotations

import re
from datetime import timedelta

import lxml.html  # type: ignore[import-untyped]

from broker.web.portal import device, when
from tests.flows.federation import Federation
from tests.flows.portal_support import account_id, services
from tests.peers.browser import Browser

FIREFOX_ANDROID = "Mozilla/5.0 (Android 14; Mobile; rv:128.0) Gecko/128.0 Firefox/128.0"
#: words a citizen's page does not use (issue 20): protocol and data-model names, raw booleans
JARGON = frozenset({"upstream", "assurance", "claim", "claims", "idp", "sp", "entity", "subject", "nameid", "issuer",
                    "true", "false", "acr"})
#: every page with the portal's menu, and the menu item that is the page itself
MENU_PAGES = {"/account/": "/account/", "/account/identities": "/account/identities", "/account/apps": "/account/apps",
              "/account/consents": "/account/consents", "/account/security/": "/account/security/",
              "/account/sessions": "/account/sessions", "/account/profile": "/account/profile",
              "/account/delete": "/account/delete", "/account/sign-out": "/account/sign-out"}


def app_login(federation: Federation, browser: Browser) -> None:
    _, page = federation.login(browser)
    assert page.status_code == 200 and browser.is_self_submitting(page), page.text[:300]


def text(page: str) -> str:
    return " ".join(lxml.html.document_fromstring(page).text_content().split())


def live_sessions(federation: Federation) -> int:
    svc = services(federation)
    return len(svc.sso_sessions.active(account_id(federation), svc.clock.now()))


def test_every_portal_page_says_whom_it_is_signed_in_as_and_marks_itself_in_the_menu(
        federation: Federation, browser: Browser) -> None:
    app_login(federation, browser)
    upstream = services(federation).registry.upstream("op")
    assert upstream is not None

    for path, current in MENU_PAGES.items():
        page = browser.get(f"{federation.url}{path}")
        assert page.status_code == 200, path
        assert f"Signed in as Anna Virtanen with {upstream.display_name}." in text(page.text), path
        marked = lxml.html.document_fromstring(page.text).xpath('//nav//a[@aria-current="page"]/@href')
        assert marked == [current], path
        words = set(re.findall(r"[a-z]+", text(page.text).lower()))
        assert words.isdisjoint(JARGON), (path, words & JARGON)
        assert upstream.issuer not in text(page.text), path


def test_the_home_page_leads_to_the_portal_before_the_metadata(federation: Federation, browser: Browser) -> None:
    page = browser.get(f"{federation.url}/")

    links = lxml.html.document_fromstring(page.text).xpath("//main//a")
    hrefs = [a.get("href") for a in links]
    assert "/account/" in hrefs and "/saml2/idp/metadata" in hrefs
    assert hrefs.index("/account/") < hrefs.index("/saml2/idp/metadata")
    assert links[hrefs.index("/account/")].text_content() == "Your account"


def test_the_sessions_page_names_the_browser_in_words_not_its_header(
        federation: Federation, browser: Browser) -> None:
    browser.session.headers["User-Agent"] = FIREFOX_ANDROID
    app_login(federation, browser)

    page = browser.get(f"{federation.url}/account/sessions")

    shown = text(page.text)
    assert "Firefox on Android, since " in shown and "(this browser)" in shown
    assert "Gecko" not in page.text and "Mozilla/5.0" not in page.text


def test_sign_out_ends_only_this_browsers_session(federation: Federation, browser: Browser) -> None:
    with Browser() as other:
        app_login(federation, browser)
        app_login(federation, other)
        assert live_sessions(federation) == 2
        confirm = browser.get(f"{federation.url}/account/sign-out")
        assert "Sign out everywhere" in confirm.text  # offered beside it, each with its sentence

        done = browser.submit(confirm, form="sign-out")

        assert done.status_code == 200 and "You are signed out" in done.text
        assert live_sessions(federation) == 1
        assert "Sign in</button>" in browser.get(f"{federation.url}/account/").text
        assert "Signed in as Anna Virtanen" in text(other.get(f"{federation.url}/account/").text)


def test_sign_out_everywhere_beside_it_still_ends_every_session(federation: Federation, browser: Browser) -> None:
    with Browser() as other:
        app_login(federation, browser)
        app_login(federation, other)
        confirm = browser.get(f"{federation.url}/account/sign-out")

        done = browser.submit(confirm, form="sign-out-all")

        assert done.status_code == 200 and "signed out everywhere" in done.text
        assert live_sessions(federation) == 0
        assert "Sign in</button>" in other.get(f"{federation.url}/account/").text


def test_a_moment_reads_as_its_time_today_and_as_its_date_before(federation: Federation) -> None:
    now = services(federation).clock.now()
    with federation.app.test_request_context("/account/sessions"):
        today, earlier = when(now), when(now - timedelta(days=3))
        words = (device(FIREFOX_ANDROID), device(""), device(None))

    assert ":" in today and str(now.year) not in today  # "9:14 AM": a time
    assert str((now - timedelta(days=3)).year) in earlier and ":" not in earlier  # a date
    assert words == ("Firefox on Android", "Unknown browser", "Unknown browser")
