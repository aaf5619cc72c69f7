"""Debian's Chromium driven by Selenium against the broker at ``https://localhost:<port>``, with a WebAuthn
virtual authenticator: shared by the passkey browser test (``test_chromium_passkeys.py``) and the script that
takes the documentation's screenshots (``tests.browser.screenshots``).

``missing()`` says why the browser cannot run (without selenium the names below are not there: callers ask
``missing()`` first, as the test module does before skipping).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

from broker.core.assurance import REFEDS_MFA
from tests.flows.federation import CITIZEN, Federation
from tests.flows.oidc_peers import RelyingParty
from tests.peers.tls import throwaway_ca

try:  # the test module skips (or fails, when required) on ``missing()`` before using any of these
    from selenium import webdriver
    from selenium.common.exceptions import (
        StaleElementReferenceException,
        TimeoutException,
        WebDriverException,
    )
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.virtual_authenticator import VirtualAuthenticatorOptions
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.wait import WebDriverWait
except ImportError:  # see missing()
    pass

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT = 15  # seconds for a page to appear or a ceremony to finish; each takes well under one
MFA_ESSENTIAL = json.dumps({"id_token": {"acr": {"essential": True, "values": [REFEDS_MFA]}}})


def missing() -> str | None:
    """Why Chromium cannot be driven here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (pip install -e '.[test]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) and os.access(path, os.X_OK)):
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


@contextmanager
def chromium(profile: Path, *extra_flags: str, performance_log: bool = False) -> Iterator[WebDriver]:
    """Headless Chromium with its profile in ``profile``, trusting the test server's key only, with a virtual
    platform authenticator (like a laptop's) that keeps discoverable credentials and verifies its user. With
    ``performance_log`` chromedriver keeps the DevTools events (``driver.get_log("performance")``: among them
    ``Network.responseReceived``, the headers each response came with)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}",
                 # trust for the test server's key only (Chromium honours this with a --user-data-dir)
                 f"--ignore-certificate-errors-spki-list={throwaway_ca().spki_sha256}", *extra_flags):
        options.add_argument(flag)
    if performance_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    # the explicit driver path: Selenium Manager neither looks for nor downloads anything
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)  # a page that never loads fails the test instead of holding the run
    try:
        driver.add_virtual_authenticator(VirtualAuthenticatorOptions(
            protocol=VirtualAuthenticatorOptions.Protocol.CTAP2,
            transport=VirtualAuthenticatorOptions.Transport.INTERNAL,
            has_resident_key=True, has_user_verification=True, is_user_verified=True, is_user_consenting=True))
        yield driver
    finally:
        driver.quit()


def page_says(driver: WebDriver) -> str:
    return f"at {driver.current_url} the page says: {driver.find_element(By.TAG_NAME, 'body').text}"


def wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    """A wait that polls on while a page is being replaced: an element found on the old page and read on the new
    one is stale, or to chromedriver 156 an "unknown error" (a node that "does not belong to the document")."""
    return WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException, WebDriverException))


def heading(driver: WebDriver, text: str) -> None:
    try:
        wait(driver).until(seen.text_to_be_present_in_element((By.TAG_NAME, "h1"), text))
    except TimeoutException:
        raise AssertionError(f"no heading {text!r} {page_says(driver)}") from None


def click(driver: WebDriver, locator: tuple[str, str]) -> None:
    """Click once the element is shown and enabled (passkey.js unhides the passkey forms)."""
    try:
        wait(driver).until(seen.element_to_be_clickable(locator)).click()
    except TimeoutException:
        raise AssertionError(f"nothing clickable at {locator} {page_says(driver)}") from None


def button(text: str) -> tuple[str, str]:
    return By.XPATH, f"//button[normalize-space()={json.dumps(text)}]"


def portal_sign_in(driver: WebDriver, fed: Federation) -> None:
    driver.get(fed.url + "/account/")
    heading(driver, "Your account")
    click(driver, button("Sign in"))
    at_the_provider(driver)
    wait(driver).until(seen.presence_of_element_located((By.LINK_TEXT, "Sign-in security")))
    assert driver.current_url == fed.url + "/account/", page_says(driver)


def at_the_provider(driver: WebDriver) -> None:
    """The demo provider's login form (it keeps no session of its own: the citizen signs in each time)."""
    heading(driver, "DEMO sign-in provider")
    driver.find_element(By.ID, "username").send_keys(CITIZEN.username)
    driver.find_element(By.ID, "password").send_keys(CITIZEN.password)
    click(driver, button("Sign in"))


def add_passkey(driver: WebDriver, fed: Federation, name: str) -> None:
    """The first second factor of the account: a passkey named ``name``; ends on the recovery codes' page."""
    driver.get(fed.url + "/account/security/")
    heading(driver, "Sign-in security")
    assert "You have no second factor yet." in driver.find_element(By.TAG_NAME, "main").text
    driver.find_element(By.ID, "passkey-name").send_keys(name)
    click(driver, (By.CSS_SELECTOR, "form#add-passkey button[type=submit]"))
    heading(driver, "Add a passkey")
    click(driver, (By.ID, "create-passkey-button"))  # navigator.credentials.create, then the form posts
    heading(driver, "Your recovery codes")


def to_the_step_up_page(driver: WebDriver, rp: RelyingParty) -> None:
    driver.get(f"{rp.url}/login?{urlencode({'claims': MFA_ESSENTIAL})}")  # the app passes it on
    # the SSO session is below the level: its own second factor raises it, with no new sign-in at the provider
    heading(driver, "Confirm it is you")


def to_the_passkey_sign_up(driver: WebDriver) -> None:
    """From the discovery page, "Create an account with a passkey": the page that explains it, its form shown (by
    passkey.js)."""
    heading(driver, "Choose how to sign in")
    click(driver, (By.CSS_SELECTOR, "form#passkey-sign-up button"))
    heading(driver, "Create an account with a passkey")
    wait(driver).until(seen.element_to_be_clickable((By.ID, "create-account-passkey-button")))


def sign_up_with_a_passkey(driver: WebDriver, name: str) -> None:
    """On the sign-up page: the optional name typed (none when empty), then the authenticator creates the passkey
    (``navigator.credentials.create``) and the form posts."""
    if name:
        driver.find_element(By.ID, "display-name").send_keys(name)
    click(driver, (By.ID, "create-account-passkey-button"))
