"""The city's look per app, and the discovery page's memory (issue 20, "The city's look, per app").

A federation with two upstreams (the demo OpenID provider "op" and the city's SAML IdP "city") and two SAML
apps, themed: the instance has its own colours and footer, and ``[[theme.apps]]`` gives sp1 ("Parking permits")
its own accent and logo. sp1's login pages (discovery, consent after sign-in) wear sp1's theme; sp2's consent page,
the portal and the home page wear the instance's. The discovery page lists the upstream chosen last on this
device first, marked "Last used"; a cookie naming no upstream changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lxml.html  # type: ignore[import-untyped]
import pytest
import requests

from tests.databases import database_for
from tests.flows.app_settings import form_index
from tests.flows.federation import ExtraUpstream, Federation, running_federation
from tests.flows.saml_upstream import CityIdp
from tests.peers.browser import Browser

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SP1 = "http://127.0.0.1:9/sp1"
APP_ACCENT, SITE_ACCENT = "#00594f", "#5a2d82"
COOKIE = "broker_last_upstream"


@contextmanager
def themed_federation(tmp_path: Path, key_folder: Path) -> Iterator[Federation]:
    static = tmp_path / "theme" / "static"
    static.mkdir(parents=True)
    for name in ("city.svg", "permits.svg"):
        (static / name).write_text("<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 1 1'/>")
    config = f"""theme_dir = "{tmp_path / 'theme'}"

[theme]
service_name = "Springfield sign-in"
footer_text = "Springfield city council"
footer_links = [{{ label = "Accessibility", url = "https://city.example/accessibility" }}]
colours = {{ accent = "{SITE_ACCENT}" }}

[[theme.apps]]
app = "{SP1}"
service_name = "Parking permits"
logo = "permits.svg"
upstream_logos = {{ city = "city.svg" }}
colours = {{ accent = "{APP_ACCENT}" }}
"""
    database = database_for("sqlite", tmp_path)
    city = CityIdp(tmp_path / "idp-keys")
    try:
        with running_federation(tmp_path / "instance", key_folder, next(database), ask_consent=True,
                                extra_upstreams=(ExtraUpstream("city", city.build, host="localhost"),),
                                extra_config=config) as fed:
            yield fed
    finally:
        for _ in database:
            pass


def stylesheet(fed: Federation, page: requests.Response) -> str:
    """The text of the page's theme stylesheet (the second one, after broker.css)."""
    links = lxml.html.fromstring(page.text).xpath("//link[@rel='stylesheet']/@href")
    assert links[0] == "/static/broker.css" and re.fullmatch(r"/static/theme/[0-9a-f]{16}\.css", links[1]), links
    css = requests.get(fed.url + links[1], timeout=10)
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert "immutable" in css.headers["Cache-Control"]
    return css.text


def header(page: requests.Response) -> str:
    return str(lxml.html.tostring(lxml.html.fromstring(page.text).xpath("//header/p[@class='brand']")[0]))


def upstream_order(page: requests.Response) -> list[str]:
    actions = [form.action or "" for form in lxml.html.fromstring(page.text).forms]
    return [a.rsplit("/", 1)[-1] for a in actions if "/upstream/" in a]


def test_one_apps_login_pages_wear_its_theme_and_no_other_page_does(tmp_path: Path, key_folder: Path,
                                                                     browser: Browser) -> None:
    with themed_federation(tmp_path, key_folder) as fed:
        _, location = fed.sps["sp1"].redirect_request()
        discovery = browser.get(location)
        assert f"--accent: {APP_ACCENT}" in stylesheet(fed, discovery)
        assert 'src="/static/theme/files/permits.svg" alt="Parking permits"' in header(discovery)
        assert "Parking permits</title>" in discovery.text
        assert 'src="/static/theme/files/city.svg"' in discovery.text  # the city IdP's logo from the app's theme
        assert "Springfield city council" in discovery.text  # the instance's footer, which the app keeps
        logo = requests.get(fed.url + "/static/theme/files/permits.svg", timeout=10)
        assert logo.status_code == 200 and logo.text.startswith("<svg")
        for outside in ("/static/theme/files/..%2Fbroker.toml", "/static/theme/0123456789abcdef.css",
                        "/static/theme/files/%2E%2E/%2E%2E/instance/broker.toml"):
            assert requests.get(fed.url + outside, timeout=10).status_code == 404, outside

        # the consent page, after the sign-in renewed the browser's session, is still the app's
        consent = browser.submit(discovery, form=form_index(discovery, "/upstream/op"))
        assert "Share your information" in consent.text
        assert f"--accent: {APP_ACCENT}" in stylesheet(fed, consent) and "permits.svg" in header(consent)

        # another app's login (here straight to consent: the session signs in) has the instance's look
        _, location = fed.sps["sp2"].redirect_request()
        other = browser.get(location)
        assert "Share your information" in other.text
        assert f"--accent: {SITE_ACCENT}" in stylesheet(fed, other)
        assert "permits.svg" not in other.text and "Springfield sign-in" in header(other)

        # the portal and the home page are the instance's, whatever login came before
        for path in ("/account/", "/"):
            page = browser.get(fed.url + path)
            assert f"--accent: {SITE_ACCENT}" in stylesheet(fed, page), path
            assert "permits.svg" not in page.text and "Springfield sign-in" in header(page), path
            assert '<a href="https://city.example/accessibility">Accessibility</a>' in page.text, path


def test_discovery_lists_the_last_choice_on_this_device_first(tmp_path: Path, key_folder: Path,
                                                              browser: Browser) -> None:
    with themed_federation(tmp_path, key_folder) as fed:
        _, location = fed.sps["sp2"].redirect_request()
        first = browser.get(location)
        assert upstream_order(first) == ["city", "op"] and "Last used" not in first.text
        assert 'class="upstream-badge" data-initial="T" aria-hidden="true">' in first.text  # op has no logo

        chosen = browser.submit(first, form=form_index(first, "/upstream/op"), follow=False)
        cookies = [c for c in chosen.raw.headers.getlist("Set-Cookie") if c.startswith(COOKIE + "=")]
        assert len(cookies) == 1 and cookies[0].startswith(f"{COOKIE}=op;"), cookies
        assert all(part in cookies[0] for part in ("SameSite=Lax", "Secure", "HttpOnly", "Path=/"))

        _, location = fed.sps["sp2"].redirect_request()
        again = browser.get(location)
        assert upstream_order(again) == ["op", "city"]
        page = lxml.html.fromstring(again.text)
        button = page.xpath("//li[@class='last-used']//button")[0]
        assert button.get("aria-describedby") == "last-used"
        assert page.get_element_by_id("last-used").text_content() == "Last used"

        # a value naming no upstream of this app is ignored
        for cookie in browser.session.cookies:
            if cookie.name == COOKIE:
                cookie.value = "nobody"
        _, location = fed.sps["sp2"].redirect_request()
        ignored = browser.get(location)
        assert upstream_order(ignored) == ["city", "op"] and "Last used" not in ignored.text


def test_a_later_login_of_no_app_does_not_wear_an_earlier_apps_theme(tmp_path: Path, key_folder: Path,
                                                                    browser: Browser) -> None:
    with themed_federation(tmp_path, key_folder) as fed:
        _, location = fed.sps["sp1"].redirect_request()
        assert f"--accent: {APP_ACCENT}" in stylesheet(fed, browser.get(location))
        signed_out = browser.get(fed.url + "/account/")
        portal_login = browser.submit(signed_out, form=form_index(signed_out, "/account/sign-in"))
        assert "/login/" in portal_login.url and "Choose how to sign in" in portal_login.text
        assert f"--accent: {SITE_ACCENT}" in stylesheet(fed, portal_login)
        assert "permits.svg" not in portal_login.text and "Springfield sign-in" in header(portal_login)
