"""Front-Channel Logout in a real browser (issue 18): Debian's Chromium against the broker at
``https://127.0.0.1:<port>`` (``tests/browser/chromium_support.py``), an OpenID app (the authlib relying party of
``tests.flows.oidc_peers``) registered with a ``frontchannel_logout_uri`` and ``frontchannel_logout_session_required``,
and that URI served by a small recording server of this module over https (the test run's throw-away CA): it keeps
the path, query, ``Sec-Fetch-Dest``, ``Referer`` and cookie names of every request, and answers a page that clears
the app's cookie, with ``Cache-Control: no-store`` (Front-Channel Logout 1.0 §3).

The citizen signs in to the app in Chromium, then the SSO session ends, in one test by the portal's "Sign out", in
another by RP-initiated logout (the app's ``id_token_hint`` and its registered ``post_logout_redirect_uri``). Each
time the browser itself loads the app's logout URI once, as an iframe (``Sec-Fetch-Dest: iframe``), with ``iss``
the issuer and ``sid`` the session of the app's ID token, without a ``Referer`` (the broker's ``Referrer-Policy:
same-origin``), and with the app's cookie, which the frame's answer clears; then the browser ends on the signed-out
page, or at the app's ``post_logout_redirect_uri`` once the frame has loaded (``logout_frames.js``). The page's
``Content-Security-Policy`` (the header as Chromium received it, from its DevTools performance log) names the app's
origin alone in ``frame-src``; and in the signed-out page Chromium frames that origin but refuses another origin of
the same server (a CSP ``frame-src`` violation, and the server never hears of it). Without the framing policy the
default ``default-src 'self'`` would refuse the app's frame too: only a real browser shows that.

Chromium missing: skipped, unless ``BROKER_TEST_BROWSER=required`` (CI), then failed.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.browser import chromium_support
from tests.browser.chromium_support import click, heading, missing, page_says, wait
from tests.flows.federation import Federation, make_keys, running_federation
from tests.flows.oidc_peers import RelyingParty, relying_party
from tests.peers.servers import RunningServer, serve
from tests.peers.tls import throwaway_ca

REQUIRED = os.environ.get("BROKER_TEST_BROWSER") == "required"

if (why := missing()) is not None:
    if REQUIRED:
        pytest.fail(f"BROKER_TEST_BROWSER=required but {why}", pytrace=False)
    pytest.skip(why, allow_module_level=True)

from selenium.common.exceptions import TimeoutException  # noqa: E402  (after the check above, which may skip)
from selenium.webdriver.chromium.webdriver import ChromiumDriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions as seen  # noqa: E402

FRONT, LANDING = "/frontchannel-logout", "/signed-out"  # the app's logout URI and its post_logout_redirect_uri
APP_COOKIE = "front_app_session"  # the app's own session cookie, which its logout frame clears
FRAME_DELAY = 0.4  # seconds the app takes to answer its frame: the page must wait for it before it goes on
APP_PAGE = b"<!doctype html><html lang=en><title>Signed out</title><p>You are signed out of the app.</p></html>"


@dataclass(frozen=True)
class Hit:
    """One request as the app's server received it (``at``: ``time.monotonic()`` on arrival)."""

    path: str
    query: dict[str, list[str]]
    dest: str | None
    referer: str | None
    cookies: frozenset[str]
    at: float


class AppEndpoints:
    """WSGI: the app's front-channel logout URI and its page after logout; every request recorded, every answer a
    page that clears ``APP_COOKIE``, not to be stored."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        cookies = frozenset(part.split("=", 1)[0].strip() for part in environ.get("HTTP_COOKIE", "").split(";")
                            if part.strip())
        hit = Hit(environ.get("PATH_INFO", ""), parse_qs(environ.get("QUERY_STRING", "")),
                  environ.get("HTTP_SEC_FETCH_DEST"), environ.get("HTTP_REFERER"), cookies, time.monotonic())
        with self._lock:
            self.hits.append(hit)
        if hit.path == FRONT:
            time.sleep(FRAME_DELAY)
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"),
                                  ("Set-Cookie", f"{APP_COOKIE}=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax")])
        return [APP_PAGE]

    def at(self, path: str) -> list[Hit]:
        with self._lock:
            return [hit for hit in self.hits if hit.path == path]


@dataclass
class World:
    fed: Federation
    rp: RelyingParty
    app: AppEndpoints
    app_server: RunningServer


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def world(tmp_path: Path, keys: Path) -> Iterator[World]:
    app = AppEndpoints()
    with running_federation(tmp_path / "instance", keys, f"sqlite:///{tmp_path / 'b.db'}") as fed, \
            serve(app, tls=throwaway_ca()) as app_server, \
            relying_party(fed, "front-app", frontchannel_logout_uri=app_server.url + FRONT,
                          frontchannel_logout_session_required=True,
                          post_logout_redirect_uris=[app_server.url + LANDING]) as rp:
        yield World(fed, rp, app, app_server)


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[WebDriver]:
    with chromium_support.chromium(tmp_path / "profile", performance_log=True) as driver:
        yield driver


def signed_in_at_the_app(driver: WebDriver, w: World) -> dict[str, Any]:
    """The app's sign-in (the demo provider signs the citizen in without a form); the app's ID token claims. The app
    then has its session cookie in this browser."""
    driver.get(w.rp.url + "/login")
    try:
        wait(driver).until(lambda _: w.rp.outcomes and (w.rp.last.userinfo is not None or w.rp.last.error))
    except TimeoutException:
        raise AssertionError(f"the app heard nothing {page_says(driver)}") from None
    outcome = w.rp.last
    assert outcome.error is None, (outcome.error, outcome.error_description, outcome.callback_args)
    claims = outcome.id_token_claims
    assert claims is not None and claims.get("sid"), claims
    driver.execute_cdp_cmd("Network.setCookie", {"name": APP_COOKIE, "value": secrets.token_urlsafe(8),
                                                 "url": w.app_server.url + "/", "secure": True, "httpOnly": True,
                                                 "sameSite": "Lax"})
    assert APP_COOKIE in app_cookies(driver, w)
    return claims


def app_cookies(driver: WebDriver, w: World) -> set[str]:
    found = driver.execute_cdp_cmd("Network.getCookies", {"urls": [w.app_server.url + "/"]})
    return {cookie["name"] for cookie in found["cookies"]}


def settled(driver: WebDriver) -> None:
    """The page and its frames have loaded (the load event waits for the frames)."""
    wait(driver).until(lambda d: d.execute_script("return document.readyState") == "complete")


def the_one_logout_frame(w: World, claims: dict[str, Any]) -> Hit:
    """The app's logout URI was loaded once, by the browser, as a frame, for the ID token's issuer and session."""
    [hit] = w.app.at(FRONT)
    assert hit.query == {"iss": [claims["iss"]], "sid": [claims["sid"]]}, hit
    assert claims["iss"] == w.fed.url
    assert hit.dest == "iframe", hit  # Fetch Metadata: a frame, not a top-level page or a fetch
    assert hit.referer is None, hit  # Referrer-Policy: same-origin: no broker URL to another origin
    assert APP_COOKIE in hit.cookies, hit  # the app can find its session (the frame is same-site)
    return hit


def document_csp(driver: WebDriver, url: str) -> dict[str, list[str]]:
    """The directives of the Content-Security-Policy of the last page at ``url`` (before its query), as Chromium
    received it (``Network.responseReceived`` in the performance log)."""
    assert isinstance(driver, ChromiumDriver)  # chromedriver's own log command
    policies = []
    for entry in driver.get_log("performance"):  # type: ignore[no-untyped-call]  # selenium leaves it untyped
        message = json.loads(entry["message"])["message"]
        if message["method"] != "Network.responseReceived" or message["params"]["type"] != "Document":
            continue
        response = message["params"]["response"]
        if response["url"].split("?")[0] == url:
            headers = {name.lower(): value for name, value in response["headers"].items()}
            policies.append(headers.get("content-security-policy", ""))
    assert policies, f"Chromium received no page at {url}"
    directives = [part.split() for part in policies[-1].split(";") if part.strip()]
    return {name: values for name, *values in directives}


def frames_only_the_app(csp: dict[str, list[str]], w: World) -> None:
    assert csp.get("frame-src") == [w.app_server.url], csp  # the registered front-channel origin alone
    assert "child-src" not in csp and csp.get("default-src") == ["'self'"], csp  # no other way to a frame


def test_the_portals_sign_out_loads_the_apps_logout_uri_in_a_frame(world: World, chromium: WebDriver) -> None:
    claims = signed_in_at_the_app(chromium, world)
    chromium.get(world.fed.url + "/account/sign-out")
    heading(chromium, "Sign out")

    click(chromium, (By.CSS_SELECTOR, "form#sign-out button[type=submit]"))

    heading(chromium, "You are signed out")
    settled(chromium)
    assert chromium.current_url == world.fed.url + "/account/sign-out", page_says(chromium)
    hit = the_one_logout_frame(world, claims)
    [frame] = chromium.find_elements(By.CSS_SELECTOR, "iframe[data-front-channel]")
    shown = urlsplit(str(frame.get_attribute("src")))
    assert (shown.path, parse_qs(shown.query)) == (FRONT, hit.query)
    assert APP_COOKIE not in app_cookies(chromium, world)  # the frame's answer ended the app's session
    frames_only_the_app(document_csp(chromium, world.fed.url + "/account/sign-out"), world)


def test_rp_initiated_logout_loads_the_frame_then_returns_to_the_app(world: World, chromium: WebDriver) -> None:
    claims = signed_in_at_the_app(chromium, world)
    assert world.rp.last.token is not None
    state = secrets.token_urlsafe(12)
    back = world.app_server.url + LANDING

    chromium.get(f"{world.fed.url}/oidc/logout?" + urlencode(
        {"id_token_hint": world.rp.last.token["id_token"], "post_logout_redirect_uri": back, "state": state}))

    try:
        wait(chromium).until(seen.url_to_be(f"{back}?{urlencode({'state': state})}"))
    except TimeoutException:
        raise AssertionError(f"not back at the app {page_says(chromium)}") from None
    hit = the_one_logout_frame(world, claims)
    [landing] = world.app.at(LANDING)
    assert landing.dest == "document" and landing.query == {"state": [state]}, landing
    assert landing.referer is None, landing
    # the broker's page went on only once the frame had loaded: after the app's (slow) answer to it
    assert landing.at >= hit.at + FRAME_DELAY, (hit, landing)
    assert APP_COOKIE not in app_cookies(chromium, world)
    frames_only_the_app(document_csp(chromium, world.fed.url + "/oidc/logout"), world)


#: adds a frame for each URL to the page and reports the page's CSP violations once the first has loaded
PROBE = """
const [allowed, refused, done] = arguments;
const violations = [];
let finished = false;
const finish = () => { if (!finished) { finished = true; done(violations); } };
document.addEventListener("securitypolicyviolation",
                          (e) => violations.push([e.effectiveDirective, e.blockedURI]));
const frame = (src) => {
  const element = document.createElement("iframe");
  element.title = "probe";
  element.src = src;
  document.body.appendChild(element);
  return element;
};
frame(allowed).addEventListener("load", () => setTimeout(finish, 500));
frame(refused);
setTimeout(finish, 8000);
"""


def test_the_signed_out_page_frames_no_other_origin(world: World, chromium: WebDriver) -> None:
    signed_in_at_the_app(chromium, world)
    chromium.get(world.fed.url + "/account/sign-out")
    click(chromium, (By.CSS_SELECTOR, "form#sign-out button[type=submit]"))
    heading(chromium, "You are signed out")
    settled(chromium)
    # the same server under another name: another origin, which the app did not register
    other = f"https://localhost:{world.app_server.port}"

    violations = chromium.execute_async_script(PROBE, f"{world.app_server.url}/probe", f"{other}/probe-refused")

    [probe] = world.app.at("/probe")
    assert probe.dest == "iframe", probe  # the registered origin: framed
    assert world.app.at("/probe-refused") == []  # the other: never requested
    assert [(directive, uri.split("/probe")[0]) for directive, uri in violations] == [("frame-src", other)]
