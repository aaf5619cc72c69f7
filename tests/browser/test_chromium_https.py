"""A real browser over real TLS: Debian's Chromium, driven by Selenium through ``/usr/bin/chromedriver``.

The journey of issue 14: the DEMO SAML app (a pysaml2 SP, ``broker.demo.saml_app``) -> the broker's
discovery page (click a provider) -> the demo OpenID provider's login form -> the broker's consent page
(allow) -> back at the app with the released attributes; then one portal form. Everything is https with the
test run's throw-away CA (``tests.peers.tls``) except the OpenID provider on plain-http loopback; Chromium
trusts exactly the test server's key (``--ignore-certificate-errors-spki-list``), nothing else.

The assertions are on what the person sees and on the ``Origin`` and ``Referer`` that the broker, the
provider and the app actually received: under the broker's ``Referrer-Policy: same-origin`` its forms post
with the broker's origin (Fetch §3.2.5) and its full page URL as Referer, and no broker URL reaches
another origin (W3C Referrer Policy §3.4). A third test makes the same journey with the flow tests' scripted
browser and checks that every server received the same requests with the same headers from both.

Chromium missing: skipped, unless ``BROKER_TEST_BROWSER=required`` (CI), then failed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import lxml.html  # type: ignore[import-untyped]  # lxml ships no type information
import pytest
import requests

from broker.demo.saml_app import DemoAppSettings, create_demo_app, metadata_xml
from tests.flows.federation import CITIZEN, Federation, make_keys, running_federation
from tests.peers.browser import Browser
from tests.peers.servers import LateApp, RunningServer, closed_port_url, serve
from tests.peers.tls import ThrowawayCa, throwaway_ca

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
REQUIRED = os.environ.get("BROKER_TEST_BROWSER") == "required"
WAIT = 15  # seconds for a page to appear; a journey takes a few seconds


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (pip install -e '.[test]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) and os.access(path, os.X_OK)):
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


if (why := _missing()) is not None:
    if REQUIRED:
        pytest.fail(f"BROKER_TEST_BROWSER=required but {why}", pytrace=False)
    pytest.skip(why, allow_module_level=True)

from selenium import webdriver  # noqa: E402  (after the check above, which may skip the module)
from selenium.common.exceptions import TimeoutException, WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions as seen  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402


@dataclass(frozen=True)
class Received:
    """One request as a server received it."""

    method: str
    path: str
    origin: str | None
    referer: str | None


class Recorder:
    """WSGI middleware keeping the method, path, ``Origin`` and ``Referer`` of every request."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app, self.seen = app, list[Received]()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.seen.append(Received(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""),
                                  environ.get("HTTP_ORIGIN"), environ.get("HTTP_REFERER")))
        return self.app(environ, start_response)

    def posts(self, prefix: str) -> list[Received]:
        return [r for r in self.seen if r.method == "POST" and r.path.startswith(prefix)]


@dataclass
class World:
    fed: Federation
    app: RunningServer
    broker_seen: Recorder
    op_seen: Recorder
    app_seen: Recorder


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_keys(tmp_path_factory.mktemp("keys"))


@contextmanager
def _world(folder: Path, keys: Path) -> Iterator[World]:
    late = LateApp()
    with running_federation(folder / "instance", keys, f"sqlite:///{folder / 'b.db'}", ask_consent=True,
                            op_login_form=True) as fed, serve(late, tls=throwaway_ca()) as app_server:
        settings = DemoAppSettings(app_server.url, keys / "sp3" / "signing.key", keys / "sp3" / "signing.crt",
                                   fed.url + "/saml2/idp/metadata")
        metadata = fed.folder / "metadata"
        (metadata / "saml-sp" / "demo-app.xml").write_text(metadata_xml(settings))
        # a second upstream, so the broker asks the person which one to use
        (metadata / "upstreams" / "city.json").write_text(json.dumps({
            "name": "city", "protocol": "oidc", "issuer": closed_port_url(), "client_id": "broker",
            "display_name": "City identity", "client_secret_file": "certs/op-client.secret"}))
        fed.app.extensions["broker"].registry.reload()
        world = World(fed, app_server, Recorder(fed.app.wsgi_app), Recorder(fed.provider.app.wsgi_app),
                      Recorder(create_demo_app(settings)))
        fed.app.wsgi_app = world.broker_seen  # type: ignore[method-assign]
        fed.provider.app.wsgi_app = world.op_seen  # type: ignore[method-assign]
        late.target = world.app_seen
        yield world


@pytest.fixture
def world(tmp_path: Path, keys: Path) -> Iterator[World]:
    with _world(tmp_path, keys) as running:
        yield running


def _chromium(ca: ThrowawayCa, profile: Path) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}",
                 # trust for the test server's key only (Chromium honours this with a --user-data-dir)
                 f"--ignore-certificate-errors-spki-list={ca.spki_sha256}"):
        options.add_argument(flag)
    # the explicit driver path: Selenium Manager neither looks for nor downloads anything
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[WebDriver]:
    driver = _chromium(throwaway_ca(), tmp_path / "profile")
    driver.set_page_load_timeout(30)  # a page that never loads fails the test instead of holding the run
    try:
        yield driver
    finally:
        driver.quit()


def _waiting(driver: WebDriver) -> WebDriverWait[WebDriver]:
    """A wait whose polls retry when they meet a page being replaced: right after a form is sent, ChromeDriver may
    answer a look-up in the old document with "Node with given id does not belong to the document" (a plain
    ``WebDriverException``). The wait still ends in ``TimeoutException`` if its condition never holds."""
    return WebDriverWait(driver, WAIT, ignored_exceptions=(WebDriverException,))


def _click(driver: WebDriver, text: str) -> None:
    _waiting(driver).until(seen.element_to_be_clickable(
        (By.XPATH, f"//button[normalize-space()={json.dumps(text)}]"))).click()


def _heading(driver: WebDriver, text: str) -> None:
    try:
        _waiting(driver).until(seen.text_to_be_present_in_element((By.TAG_NAME, "h1"), text))
    except TimeoutException:
        body = driver.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"no heading {text!r} at {driver.current_url}; the page says: {body}") from None


def _sign_in_at_the_app(driver: WebDriver, world: World) -> None:
    driver.get(world.app.url + "/")
    _click(driver, "Sign in")
    _heading(driver, "Choose how to sign in")
    assert "DEMO city app asks you to sign in" in driver.find_element(By.TAG_NAME, "main").text
    _click(driver, "Sign in with Test OpenID provider")
    _heading(driver, "DEMO sign-in provider")
    driver.find_element(By.ID, "username").send_keys(CITIZEN.username)
    driver.find_element(By.ID, "password").send_keys(CITIZEN.password)
    _click(driver, "Sign in")
    _heading(driver, "Share your information with DEMO city app?")
    _click(driver, "Allow and continue")
    _heading(driver, "Signed in")  # the broker's page posted the SAML Response to the app by itself


def test_app_discovery_provider_consent_and_back_over_https(world: World, chromium: WebDriver) -> None:
    _sign_in_at_the_app(chromium, world)

    shown = chromium.find_element(By.TAG_NAME, "main").text
    assert chromium.current_url == world.app.url + "/acs"
    assert str(CITIZEN.claims["email"]) in shown and "Virtanen" in shown
    assert world.fed.accounts() == 1
    broker, broker_origin = world.broker_seen, world.fed.url
    # the broker's forms (discovery choice, consent) came with its origin and the page's full URL
    for post in broker.posts("/login/") + broker.posts("/consent/"):
        assert post.origin == broker_origin, post
        assert post.referer is not None and post.referer.startswith(broker_origin + "/"), post
    assert broker.posts("/login/") and broker.posts("/consent/")
    # no broker URL (with its login handle) reached another origin, not even as an origin-only Referer
    assert [r for r in world.op_seen.seen if r.referer and r.referer.startswith(broker_origin)] == []
    acs = world.app_seen.posts("/acs")
    assert [(r.origin, r.referer) for r in acs] == [("null", None)]  # Fetch §3.2.5 under same-origin
    assert not broker.posts("/saml2/idp/sso")  # the app used the Redirect binding


def test_a_portal_form_works_over_https(world: World, chromium: WebDriver) -> None:
    _sign_in_at_the_app(chromium, world)
    broker_origin = world.fed.url

    chromium.get(broker_origin + "/account/consents")
    _heading(chromium, "Apps and your information")
    _click(chromium, "Withdraw consent for DEMO city app")
    _waiting(chromium).until(seen.text_to_be_present_in_element(
        (By.TAG_NAME, "main"), "No app receives information about you."))

    assert urlsplit(chromium.current_url).path == "/account/consents"
    [withdraw] = world.broker_seen.posts("/account/consents/withdraw")
    assert withdraw.origin == broker_origin and withdraw.referer == broker_origin + "/account/consents"


def _scripted_sign_in(browser: Browser, world: World) -> None:
    """The same journey with the scripted test browser (``tests.peers.browser``)."""
    page = browser.submit(browser.get(world.app.url + "/"))
    page = browser.submit(page, form=next(i for i, f in enumerate(_forms(page)) if "/upstream/op" in f))
    page = browser.submit(page, {"username": CITIZEN.username, "password": CITIZEN.password}, button="login")
    page = browser.auto_submit(browser.submit(page, button="decision"))  # "Allow and continue", then to the app
    assert page.url == world.app.url + "/acs" and str(CITIZEN.claims["email"]) in page.text


def _forms(page: requests.Response) -> list[str]:
    """The actions of the page's forms."""
    return [str(form.action or "") for form in lxml.html.document_fromstring(page.text).forms]


def _normalised(world: World, recorder: Recorder) -> list[tuple[str, str, str | None, str | None]]:
    """What a server received, with this world's ports and the broker's handles replaced by names."""
    names = {world.fed.url: "BROKER", world.fed.op.url: "OP", world.app.url: "APP"}

    def plain(text: str | None) -> str | None:
        if text is None:
            return None
        for url, name in names.items():
            text = text.replace(url, name)
        return re.sub(r"/(login|consent)/[^/?]+", r"/\1/*", text.split("?")[0])

    return [(r.method, str(plain(r.path)), plain(r.origin), plain(r.referer)) for r in recorder.seen
            if not r.path.startswith("/static/") and r.path != "/favicon.ico"]


def test_the_scripted_browser_sends_what_chromium_sends(tmp_path: Path, keys: Path, chromium: WebDriver) -> None:
    """The flow tests' browser (``tests.peers.browser``) against the real one: the same journey, the same
    requests with the same ``Origin`` and ``Referer`` at the broker, the provider and the app."""
    with _world(tmp_path / "chromium", keys) as real:
        _sign_in_at_the_app(chromium, real)
        chromium_saw = [_normalised(real, r) for r in (real.broker_seen, real.op_seen, real.app_seen)]
    with _world(tmp_path / "scripted", keys) as scripted, Browser() as browser:
        _scripted_sign_in(browser, scripted)
        scripted_saw = [_normalised(scripted, r) for r in (scripted.broker_seen, scripted.op_seen, scripted.app_seen)]
    assert scripted_saw == chromium_saw
    assert any(post[0] == "POST" and post[2] == "BROKER" for post in chromium_saw[0])  # the forms were seen
