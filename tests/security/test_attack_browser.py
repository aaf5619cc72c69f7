"""Attacks through the browser: login CSRF, session fixation, redirect URI manipulation and open redirects,
replay of SAML requests and OAuth callbacks, clickjacking, and the SameSite rules around the cross-site POSTs
of SAML and of ``response_mode=form_post`` (docs/security.md, the rows of the same names).

Everything runs against the real peers of ``tests/flows``: the broker on its own HTTP server, an authlib
OpenID provider, pysaml2 SPs, and scripted browsers that keep cookies as a browser does (including withholding
``SameSite=Lax`` cookies from cross-site POSTs).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import lxml.html  # type: ignore[import-untyped]
import pytest
import requests

from broker.app import SESSION_COOKIE_HTTP, SESSION_COOKIE_HTTPS, close_app, create_app
from broker.config.settings import load_settings
from broker.core.model import utcnow
from tests.flows.federation import Federation, FixedClock, saml_status
from tests.flows.saml_peers import SpKeys, TestSp
from tests.peers.browser import Browser
from tests.security.attack_support import (
    DENIED,
    REQUESTER,
    assert_nothing_stored,
    assert_page,
    query_of,
    register_upstream,
    start_login,
    with_param,
)

EVIL = "https://evil.example/steal"
SAME_SITE_MARK = "_same_site"  # the field the broker's bounce page adds (broker.web.login)


def _discovery(federation: Federation, browser: Browser) -> requests.Response:
    """A login of sp1 up to the discovery page (two upstreams registered, no hint)."""
    register_upstream(federation, "city", "https://idp.city.example")
    _, page = federation.login(browser)
    assert page.status_code == 200 and "/login/" in page.url, page.text[:300]
    return page


# -- login CSRF ---------------------------------------------------------------------------------------------------


def test_login_csrf_callback_state_from_another_browser(federation: Federation, browser: Browser) -> None:
    # (moved here from tests/flows/test_saml_to_oidc_attacks.py)
    _, url = federation.sps["sp1"].redirect_request()
    while "/upstream/oidc/" not in url:  # the attacker walks their own login up to the callback
        url = urljoin(url, browser.get(url, follow=False).headers["Location"])
    callback = url
    with Browser() as victim:  # login CSRF: the victim's browser gets the attacker's authorization response
        assert_page(victim.get(callback), 400)
    assert_nothing_stored(federation)


def test_login_csrf_pending_login_handle_from_another_browser(federation: Federation, browser: Browser) -> None:
    """The attacker's pending login (its discovery page address and the address that sends it upstream) is
    worthless in the victim's browser: the handle is bound to the browser that started the login."""
    discovery = _discovery(federation, browser)
    handle_url = discovery.url
    with Browser() as victim:
        _, own = federation.login(victim)  # the victim has a session (and a pending login) of their own
        assert own.status_code == 200
        assert_page(victim.get(handle_url), 400)
        assert_page(victim.get(handle_url + "/upstream/op"), 400)
    assert federation.provider.hits("authorize") == 0
    assert_nothing_stored(federation)


def test_login_csrf_form_post_answer_posted_cross_site_into_the_victims_browser(federation: Federation,
                                                                              browser: Browser) -> None:
    """``response_mode=form_post`` makes the callback accept POSTs, and a cross-site POST arrives without the
    broker's Lax cookie. An attacker's page posts the attacker's own code and state into the victim's browser:
    the broker bounces it same-site, then refuses it, because that state was never this browser's."""
    with Browser() as attacker:
        answer = query_of(start_login(federation, attacker))
    callback = f"{federation.url}/upstream/oidc/op/callback"
    _discovery(federation, browser)  # the victim is signing in too (up to the discovery page): a session exists

    bounce = browser.post(callback, answer, initiator="http://localhost:9/attackers-page")
    assert bounce.status_code == 200 and browser.is_self_submitting(bounce)
    assert browser.form_fields(bounce)[SAME_SITE_MARK] == "1"
    assert_page(browser.auto_submit(bounce), 400)  # same-site now, with the cookie: not this browser's state

    forged_mark = browser.post(callback, {**answer, SAME_SITE_MARK: "1"}, initiator="http://localhost:9/page")
    assert_page(forged_mark, 400)  # claiming to be the bounce does not help: still no cookie, no state
    assert federation.provider.hits("token") == 0
    assert_nothing_stored(federation)


# -- session fixation -----------------------------------------------------------------------------------------------


def test_session_fixation_planted_session_id_is_replaced(federation: Federation, browser: Browser) -> None:
    """Session fixation: a session id planted before sign-in must not be the signed-in session."""
    # (moved here from tests/flows/test_saml_to_oidc_attacks.py)
    _, location = federation.sps["sp1"].redirect_request()
    url = location
    while "/upstream/oidc/" not in url:
        url = urljoin(url, browser.get(url, follow=False).headers["Location"])
    planted = browser.session.cookies.get(SESSION_COOKIE_HTTPS)
    assert planted

    browser.get(url)
    signed_in = browser.session.cookies.get(SESSION_COOKIE_HTTPS)
    assert signed_in and signed_in != planted
    with Browser() as attacker:  # the attacker kept the planted id: it carries no SSO session
        attacker.session.cookies.set(SESSION_COOKIE_HTTPS, planted, domain="127.0.0.1", path="/")
        _, page = federation.login(attacker, "sp2")
        assert "SAMLResponse" in attacker.form_fields(page)
    assert federation.provider.hits("authorize") == 2, "the planted id must not carry the victim's SSO session"


# -- redirect URI manipulation and open redirects -------------------------------------------------------------------


def test_redirect_manipulation_acs_url_not_in_metadata(federation: Federation, browser: Browser) -> None:
    # (moved here from tests/flows/test_saml_to_oidc_attacks.py)
    _, location = federation.sps["sp1"].redirect_request(
        assertion_consumer_service_url="http://127.0.0.1:9/attacker/acs")
    page = browser.get(location)

    assert_page(page, 400)
    assert "attacker" not in page.text
    assert_nothing_stored(federation)


def test_redirect_manipulation_unknown_sp_gets_a_page_not_a_response(federation: Federation, browser: Browser,
                                                                     key_folder: Path) -> None:
    # (moved here from tests/flows/test_saml_to_oidc_attacks.py)
    folder = key_folder
    stranger = TestSp("http://127.0.0.1:9/stranger", SpKeys(folder / "sp3" / "signing.key",
                                                            folder / "sp3" / "signing.crt"))
    stranger.connect(browser.get(federation.url + "/saml2/idp/metadata").text)
    _, location = stranger.redirect_request()
    page = browser.get(location)

    assert_page(page, 400)
    assert "not registered" in page.text
    assert_nothing_stored(federation)


OFF_SITE_PARAMS = ("next", "return_to", "returnTo", "redirect", "redirect_uri", "url", "continue", "target",
                   "AssertionConsumerServiceURL")


def _plant(url: str) -> str:
    for name in OFF_SITE_PARAMS:
        url = with_param(url, name, EVIL)
    return url


def test_open_redirect_request_supplied_urls_are_never_followed(federation: Federation, browser: Browser) -> None:
    """A whole login with an off-site URL planted in every request parameter a redirector might read (the SSO
    request, the discovery page, the upstream hop, the callback) and in the SP's RelayState. Every answer of the
    broker either redirects within the broker, to the registered upstream's authorization endpoint, or posts to
    the SP's registered ACS; the provider is sent the registered redirect URI."""
    register_upstream(federation, "city", "https://idp.city.example")
    sp = federation.sps["sp1"]
    broker = urlsplit(federation.url)
    authorize = urlsplit(federation.provider.url("authorize"))
    _, location = sp.redirect_request(relay_state=EVIL)

    url = _plant(location)
    page = browser.get(url, follow=False)
    hops = 0
    while True:
        hops += 1
        assert hops < 20
        here = urlsplit(url)
        if page.status_code in (301, 302, 303, 307, 308):
            target = urlsplit(urljoin(url, page.headers["Location"]))
            if (here.hostname, here.port) == (broker.hostname, broker.port):  # the broker's own redirect
                assert "evil" not in page.headers["Location"]
                assert (target.hostname, target.port) == (broker.hostname, broker.port) or (
                    target.scheme, target.netloc, target.path) == (authorize.scheme, authorize.netloc, authorize.path)
                if target.path == authorize.path:
                    assert query_of(target.geturl())["redirect_uri"] == f"{federation.url}/upstream/oidc/op/callback"
            url = target.geturl()
            if "/upstream/oidc/" in url:
                url = _plant(url)
            page = browser.get(url, follow=False)
            continue
        assert page.status_code == 200, page.text[:300]
        forms = lxml.html.document_fromstring(page.text).forms
        if "/login/" in url and "/upstream/" not in url:  # the discovery page: choose "op"
            chosen = next(f for f in forms if (f.action or "").endswith("/upstream/op"))
            assert urlsplit(urljoin(url, chosen.action)).netloc == broker.netloc
            page_url, url = url, _plant(urljoin(url, chosen.action))
            page = browser.post(url, dict(chosen.form_values()), follow=False, initiator=page_url)
            continue
        break
    assert browser.is_self_submitting(page)
    (form,) = lxml.html.document_fromstring(page.text).forms
    assert form.action == sp.acs_url  # the ACS of the metadata, nothing else
    assert browser.form_fields(page)["RelayState"] == EVIL  # the SP's own (signed) RelayState, returned to it only
    assert federation.accounts() == 1


def test_open_redirect_host_header_never_names_where_the_bounce_posts(federation: Federation) -> None:
    fields = {"code": "a-code", "state": "a-state-this-browser-lacks"}
    page = requests.post(f"{federation.url}/upstream/oidc/op/callback", data=fields,
                         headers={"Host": "evil.example"}, timeout=10)
    assert page.status_code == 200
    (form,) = lxml.html.document_fromstring(page.text).forms
    assert urlsplit(form.action).netloc == urlsplit(federation.url).netloc, form.action


# -- replay -----------------------------------------------------------------------------------------------------------
# (moved here from tests/flows/test_saml_to_oidc_attacks.py)


@pytest.mark.parametrize("shift", [timedelta(minutes=10), timedelta(minutes=-10)])
def test_saml_request_replay_outside_its_lifetime(federation: Federation, browser: Browser,
                                                  shift: timedelta) -> None:
    _, location = federation.sps["sp1"].redirect_request()
    federation.set_clock(FixedClock(utcnow() + shift))
    page = browser.get(location)

    assert saml_status(browser.form_fields(page)) == (REQUESTER, DENIED)
    assert_nothing_stored(federation)


def test_oauth_callback_replay(federation: Federation, browser: Browser) -> None:
    federation.login(browser)
    callback = next(u for u in browser.history if "/upstream/oidc/" in u)
    assert federation.accounts() == 1

    assert_page(browser.get(callback), 400)
    with Browser() as other:
        assert_page(other.get(callback), 400)
    assert federation.accounts() == 1


# -- clickjacking -----------------------------------------------------------------------------------------------------


def _refuses_framing(page: requests.Response) -> None:
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"], page.url
    assert page.headers["X-Frame-Options"] == "DENY", page.url


def test_clickjacking_pages_that_act_on_one_click_refuse_to_be_framed(federation: Federation,
                                                                      browser: Browser) -> None:
    """The pages where one click (or none) does something are the ones worth framing: the discovery page's
    buttons, the page posting the SAML answer to the app, the SAML error answer, and the same-site bounce that
    carries an authorization code. None may render inside another site's frame."""
    discovery = _discovery(federation, browser)
    chosen = next(i for i, f in enumerate(lxml.html.document_fromstring(discovery.text).forms)
                  if (f.action or "").endswith("/upstream/op"))
    answer = browser.submit(discovery, form=chosen)
    with Browser() as other:
        _, error_answer = federation.login(other, is_passive="true")  # NoPassive: a SAML error posted to the app
        bounce = other.post(f"{federation.url}/upstream/oidc/op/callback", {"code": "c", "state": "s"},
                            initiator="http://localhost:9/")
    assert browser.is_self_submitting(answer) and "SAMLResponse" in browser.form_fields(error_answer)
    assert SAME_SITE_MARK in browser.form_fields(bounce)
    for page in (discovery, answer, error_answer, bounce):
        _refuses_framing(page)


# -- SameSite and the cross-site POSTs ----------------------------------------------------------------------------


def test_same_site_lax_cookie_on_plain_http_and_none_secure_on_https(federation: Federation) -> None:
    """The session cookie as a browser receives it when a login starts: ``SameSite=None; Secure; HttpOnly`` on
    https (the federation's broker: real TLS) so the SAML POST binding's cross-site POST carries it,
    ``SameSite=Lax`` on plain-http localhost (browsers refuse ``None`` without ``Secure``), and never ``None``
    without ``Secure``. On https the name carries the ``__Host-`` prefix, so a sibling host cannot toss a cookie
    of that name into the victim's browser (issue 15, point 6)."""
    with Browser() as browser:
        start_login(federation, browser)
        cookie = next(c for c in browser.session.cookies if c.name == SESSION_COOKIE_HTTPS)
        assert federation.url.startswith("https://")
        assert cookie.get_nonstandard_attr("SameSite") == "None" and cookie.secure
        assert cookie.has_nonstandard_attr("HttpOnly")
        # a __Host- cookie (cookie tossing from a sibling host): Secure, Path=/ and no Domain, RFC 6265bis §4.1.3.2
        assert cookie.name.startswith("__Host-") and cookie.path == "/" and not cookie.domain_specified
        assert [c.name for c in browser.session.cookies if "broker" in c.name] == [SESSION_COOKIE_HTTPS]

    local = "http://127.0.0.1:5000"
    config = federation.folder / "broker-http.toml"
    config.write_text((federation.folder / "broker.toml").read_text().replace(
        f'base_url = "{federation.url}"', f'base_url = "{local}"'))
    app = create_app(load_settings(config, environ={}))
    try:
        client = app.test_client()
        metadata = client.get("/saml2/idp/metadata", base_url=local).get_data(as_text=True)
        sp = TestSp(federation.sps["sp1"].entity_id, federation.sps["sp1"].keys)
        sp.connect(metadata)
        _, location = sp.redirect_request()
        assert location.startswith(local + "/")
        started = client.get(location[len(local):], base_url=local)
        assert started.status_code == 302, started.get_data(as_text=True)[:300]
        (set_cookie,) = [h for h in started.headers.getlist("Set-Cookie") if h.startswith(SESSION_COOKIE_HTTP + "=")]
        attributes = {a.strip().split("=")[0].lower(): a.strip() for a in set_cookie.split(";")[1:]}
        assert attributes["samesite"] == "SameSite=Lax"
        assert "secure" not in attributes and "httponly" in attributes
    finally:
        close_app(app)
