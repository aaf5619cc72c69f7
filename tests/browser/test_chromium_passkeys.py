"""Passkeys in a real browser (issue 17): Debian's Chromium with a WebAuthn virtual authenticator (the Chrome
DevTools one, driven through Selenium's WebDriver extension commands) against the broker at
``https://localhost:<port>``: WebAuthn wants a domain as the relying party ID, so the broker is named
"localhost" (it listens on 127.0.0.1; the test certificate covers both names, ``tests.peers.tls``).

One journey: the citizen signs in to the portal (the demo provider's login form), adds a passkey named "laptop"
on the sign-in security page (passkey.js runs ``navigator.credentials.create``; the authenticator makes a
discoverable credential for the RP ID "localhost") and sees the recovery codes; then an OpenID app (the authlib
relying party) asks for MFA with the ``claims`` parameter and the broker's step-up page offers the passkey.
With the authenticator's user verification failing the app gets nothing; with it passing the app's ID token
says ``acr`` REFEDS MFA and ``amr`` hwk, user and mfa.

Chromium missing: skipped, unless ``BROKER_TEST_BROWSER=required`` (CI), then failed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from broker.core.assurance import REFEDS_MFA
from tests.flows.federation import CITIZEN, Federation, make_keys, running_federation
from tests.flows.oidc_peers import RelyingParty, relying_party
from tests.peers.tls import throwaway_ca

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
REQUIRED = os.environ.get("BROKER_TEST_BROWSER") == "required"
WAIT = 15  # seconds for a page to appear or a ceremony to finish; each takes well under one
MFA_ESSENTIAL = json.dumps({"id_token": {"acr": {"essential": True, "values": [REFEDS_MFA]}}})


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
from selenium.common.exceptions import (  # noqa: E402
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.virtual_authenticator import VirtualAuthenticatorOptions  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions as seen  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[Federation]:
    keys = make_keys(tmp_path / "keys")
    with running_federation(tmp_path / "instance", keys, f"sqlite:///{tmp_path / 'b.db'}", op_login_form=True,
                            broker_host="localhost") as fed:
        yield fed


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}",
                 # trust for the test server's key only (Chromium honours this with a --user-data-dir)
                 f"--ignore-certificate-errors-spki-list={throwaway_ca().spki_sha256}"):
        options.add_argument(flag)
    # the explicit driver path: Selenium Manager neither looks for nor downloads anything
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)  # a page that never loads fails the test instead of holding the run
    try:
        # a platform authenticator (like a laptop's) that keeps discoverable credentials and verifies its user
        driver.add_virtual_authenticator(VirtualAuthenticatorOptions(
            protocol=VirtualAuthenticatorOptions.Protocol.CTAP2,
            transport=VirtualAuthenticatorOptions.Transport.INTERNAL,
            has_resident_key=True, has_user_verification=True, is_user_verified=True, is_user_consenting=True))
        yield driver
    finally:
        driver.quit()


def _page_says(driver: WebDriver) -> str:
    return f"at {driver.current_url} the page says: {driver.find_element(By.TAG_NAME, 'body').text}"


def _wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    """A wait that polls on while a page is being replaced: an element found on the old page and read on the new
    one is stale, or to chromedriver 156 an "unknown error" (a node that "does not belong to the document")."""
    return WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException, WebDriverException))


def _heading(driver: WebDriver, text: str) -> None:
    try:
        _wait(driver).until(seen.text_to_be_present_in_element((By.TAG_NAME, "h1"), text))
    except TimeoutException:
        raise AssertionError(f"no heading {text!r} {_page_says(driver)}") from None


def _click(driver: WebDriver, locator: tuple[str, str]) -> None:
    """Click once the element is shown and enabled (passkey.js unhides the passkey forms)."""
    try:
        _wait(driver).until(seen.element_to_be_clickable(locator)).click()
    except TimeoutException:
        raise AssertionError(f"nothing clickable at {locator} {_page_says(driver)}") from None


def _button(text: str) -> tuple[str, str]:
    return By.XPATH, f"//button[normalize-space()={json.dumps(text)}]"


def _portal_sign_in(driver: WebDriver, fed: Federation) -> None:
    driver.get(fed.url + "/account/")
    _heading(driver, "Your account")
    _click(driver, _button("Sign in"))
    _at_the_provider(driver)
    _wait(driver).until(seen.presence_of_element_located((By.LINK_TEXT, "Sign-in security")))
    assert driver.current_url == fed.url + "/account/", _page_says(driver)


def _at_the_provider(driver: WebDriver) -> None:
    """The demo provider's login form (it keeps no session of its own: the citizen signs in each time)."""
    _heading(driver, "DEMO sign-in provider")
    driver.find_element(By.ID, "username").send_keys(CITIZEN.username)
    driver.find_element(By.ID, "password").send_keys(CITIZEN.password)
    _click(driver, _button("Sign in"))


def _add_passkey(driver: WebDriver, fed: Federation, name: str) -> None:
    driver.get(fed.url + "/account/security/")
    _heading(driver, "Sign-in security")
    assert "You have no second factor yet." in driver.find_element(By.TAG_NAME, "main").text
    driver.find_element(By.ID, "passkey-name").send_keys(name)
    _click(driver, (By.CSS_SELECTOR, "form#add-passkey button[type=submit]"))
    _heading(driver, "Add a passkey")
    _click(driver, (By.ID, "create-passkey-button"))  # navigator.credentials.create, then the form posts
    _heading(driver, "Your recovery codes")


def _to_the_step_up_page(driver: WebDriver, rp: RelyingParty) -> None:
    driver.get(f"{rp.url}/login?{urlencode({'claims': MFA_ESSENTIAL})}")  # the app passes it on
    # the SSO session is below the level: the broker asks the provider for it first (which cannot give it)
    _at_the_provider(driver)
    _heading(driver, "Confirm it is you")


def test_a_passkey_added_in_the_portal_answers_an_apps_mfa_step_up(federation: Federation,
                                                                   chromium: WebDriver) -> None:
    _portal_sign_in(chromium, federation)

    # (1) the portal: a passkey named "laptop", made by the browser's authenticator
    _add_passkey(chromium, federation, "laptop")

    codes = chromium.find_elements(By.CSS_SELECTOR, "ol.recovery-codes li code")
    assert len(codes) == 10 and "laptop was added." in chromium.find_element(By.TAG_NAME, "main").text
    [credential] = chromium.get_credentials()
    assert credential.is_resident_credential and credential.rp_id == "localhost"
    assert credential.user_handle  # the broker's random handle for the account, kept by the authenticator
    _click(chromium, (By.LINK_TEXT, "I have written them down"))
    _heading(chromium, "Sign-in security")
    listed = chromium.find_element(By.TAG_NAME, "table").text
    assert "laptop" in listed and "Passkey" in listed and "Recovery codes" in listed

    with relying_party(federation) as rp:
        # (3) the app asks for MFA; the authenticator cannot verify the person: no token for the app
        _to_the_step_up_page(chromium, rp)
        chromium.set_user_verified(False)
        _click(chromium, (By.ID, "use-passkey"))
        refused = _wait(chromium).until(_passkey_refused)
        assert refused in {"browser", "broker"}  # Chromium's: UV is required, the authenticator fails it
        assert rp.outcomes == [], "the app got an answer although the passkey did not pass"
        [after_refusal] = chromium.get_credentials()
        assert after_refusal.id == credential.id

        # (2) the person verifies: the same step-up, and the app's ID token says MFA with a hardware key
        chromium.set_user_verified(True)
        _click(chromium, (By.ID, "use-passkey"))
        try:
            _wait(chromium).until(lambda _: rp.outcomes)
        except TimeoutException:
            raise AssertionError(f"the app heard nothing {_page_says(chromium)}") from None

        outcome = rp.last
        assert outcome.error is None, (outcome.error, outcome.error_description, outcome.callback_args)
        claims = outcome.id_token_claims
        assert claims is not None and claims["acr"] == REFEDS_MFA, claims
        assert {"hwk", "user", "mfa"} <= set(claims["amr"]), claims
        assert outcome.userinfo is not None and outcome.userinfo["sub"] == claims["sub"]
        _wait(chromium).until(seen.url_contains(f"{rp.url}/callback"))
        [used] = chromium.get_credentials()
        assert used.sign_count > credential.sign_count  # the authenticator signed (once more)


def _passkey_refused(driver: WebDriver) -> str | None:
    """"browser" when passkey.js shows that the ceremony failed, "broker" when the page came back saying the
    answer did not work; None while neither (the ceremony or the post is under way)."""
    problems = driver.find_elements(By.CSS_SELECTOR, "[data-passkey-problem]")
    if problems and problems[0].is_displayed():
        return "browser"
    alerts = driver.find_elements(By.CSS_SELECTOR, "[role=alert].error")
    if any("did not work" in a.text for a in alerts):
        return "broker"
    return None
