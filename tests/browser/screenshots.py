"""Screenshots of the citizen's second-factor pages for the README and docs/security.md (issue 17).

    BROKER_SCREENSHOTS=docs/img .venv/bin/python -m tests.browser.screenshots

Not a test: it runs the federation of the passkey browser test (the broker at ``https://localhost:<port>``, the
demo provider's login form, an OpenID app) with a second provider registered, so that an app that names no
provider has a choice and shows the discovery page; Chromium (1000x800, light theme) with a virtual WebAuthn
authenticator goes through the pages and saves them, uncropped, as PNG files into the folder named by
``BROKER_SCREENSHOTS``:

- ``recovery-codes.png``: the codes shown once, after the first factor (a passkey named "laptop") was added;
- ``authenticator-enrol.png``: adding an authenticator app ("phone"), with the QR code (after the passkey
  confirmed it is the citizen: adding a second factor needs a fresh one);
- ``security-page.png``: the Sign-in security page listing the passkey, the app and the recovery codes;
- ``step-up.png``: an app asking for MFA (the ``claims`` parameter): the passkey button and the code field;
- ``passkey-sign-in.png``: the page the discovery page's "Sign in with a passkey" leads to;
- ``passkey-sign-up.png``: the page the discovery page's "Create an account with a passkey" leads to (the new
  account, named "Anna", is the second one: the app gets its ID token);
- ``step-up-enrol.png``: an app asking for MFA at the citizen's first sign-in, before the account exists, with
  ``[assurance] enrol_at_step_up`` on: adding an authenticator app right there. This journey alone is left at
  its page (finished, it would give the account its first factor, and the passkey's recovery codes would not
  come first); no account is made until the first code is entered.

Every other journey is finished (the app gets its ID token), so the pages are the ones a citizen really sees. With
Pillow installed the PNGs are reduced to a 256-colour palette. Needs selenium, chromium and chromium-driver
(``tests/browser/chromium_support.py``).

The citizen pages of docs/citizen-pages.md (``citizen-<page>-<lang>-<desktop|phone>.png``) are taken by the browser
test that checks them (issue 20), with the same variable::

    BROKER_SCREENSHOTS=docs/img .venv/bin/pytest -p no:cacheprovider tests/browser/test_chromium_pages.py -k every
"""

from __future__ import annotations

import importlib
import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pyotp
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from broker.core.assurance import REFEDS_MFA
from broker.demo.oidc_provider import DemoClient, DemoProviderSettings, create_demo_provider
from broker.keys.keyring import write_private
from tests.browser import chromium_support
from tests.browser.chromium_support import (
    MFA_ESSENTIAL,
    add_passkey,
    at_the_provider,
    button,
    click,
    heading,
    missing,
    page_says,
    sign_up_with_a_passkey,
    to_the_passkey_sign_up,
    wait,
)
from tests.flows.federation import CITIZEN, ExtraUpstream, Federation, make_keys, running_federation
from tests.flows.oidc_peers import RelyingParty, relying_party

FOLDER_ENV = "BROKER_SCREENSHOTS"
WINDOW = (1000, 800)  # the page's area (the screenshot); the window is made as much larger as its frame needs
CHOOSE = "Choose how to sign in"
PROVIDER = "DEMO sign-in provider"
CONFIRM = "Confirm it is you"
APP_NAME = "City library"
#: the operator lets an account without a second factor add one at the step-up (``step-up-enrol.png``)
ENROL_AT_STEP_UP = "[assurance]\nenrol_at_step_up = true\n"


class SecondProvider:
    """Another OpenID provider next to the demo one, only so that the discovery page has a choice to show."""

    def build(self, base_url: str, redirect_uri: str, folder: Path) -> tuple[Any, dict[str, Any]]:
        secret = secrets.token_urlsafe(24)
        write_private(folder / "certs" / "social.secret", secret.encode())
        provider = create_demo_provider(DemoProviderSettings(
            issuer=base_url, clients=(DemoClient("social-client", secret, (redirect_uri,)),), users=(CITIZEN,)))
        return provider.app, {"protocol": "oidc", "issuer": base_url, "client_id": "social-client",
                              "display_name": "Another OpenID provider", "client_secret_file": "certs/social.secret"}


def main() -> int:
    folder = os.environ.get(FOLDER_ENV, "")
    if not folder:
        print(f"usage: {FOLDER_ENV}=docs/img python -m tests.browser.screenshots", file=sys.stderr)
        return 2
    if (why := missing()) is not None:
        print(f"cannot take screenshots: {why}", file=sys.stderr)
        return 1
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="broker-screenshots-") as work:
        take(Path(work), out)
    return 0


def take(work: Path, out: Path) -> None:
    keys = make_keys(work / "keys")
    with running_federation(work / "instance", keys, f"sqlite:///{work / 'b.db'}", op_login_form=True,
                            broker_host="localhost", extra_config=ENROL_AT_STEP_UP,
                            extra_upstreams=[ExtraUpstream("social", SecondProvider().build)]) as fed, \
            chromium_support.chromium(work / "profile", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                                      "--force-device-scale-factor=1", "--hide-scrollbars") as driver, \
            relying_party(fed, client_name=APP_NAME) as rp:
        _size_the_page(driver)
        if isinstance(driver, webdriver.Chrome):  # the light theme, whatever the machine's
            driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                                   {"features": [{"name": "prefers-color-scheme", "value": "light"}]})
        _step_up_enrol(driver, rp, out)  # first: the citizen has no account yet
        _portal_sign_in(driver, fed)

        # the first factor, a passkey: the recovery codes come with it
        add_passkey(driver, fed, "laptop")
        _scroll_to(driver, "p[role=status]")  # from "laptop was added." to "I have written them down"
        _shot(driver, out, "recovery-codes.png")
        click(driver, (By.LINK_TEXT, "I have written them down"))
        heading(driver, "Sign-in security")

        # an authenticator app: adding a second factor needs a fresh one (the passkey), then the QR code
        _start_adding_the_app(driver, "phone")
        wait(driver).until(lambda d: "needs a fresh second factor" in _main_text(d))  # the page after the post
        click(driver, (By.CSS_SELECTOR, "form#second-factor-sign-in button"))
        if _headed(driver, CHOOSE, PROVIDER, CONFIRM) != CONFIRM:  # a new upstream sign-in first, or straight on
            _sign_in_upstream(driver)
        heading(driver, CONFIRM)
        click(driver, (By.ID, "use-passkey"))
        wait(driver).until(lambda d: d.current_url.startswith(fed.url + "/account/"))  # back in the portal
        driver.get(fed.url + "/account/security/")
        heading(driver, "Sign-in security")
        _start_adding_the_app(driver, "phone")
        heading(driver, "Add an authenticator app")
        wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, "main svg"))
        _shot(driver, out, "authenticator-enrol.png")
        secret = "".join(driver.find_element(By.ID, "secret").text.split())
        driver.find_element(By.ID, "code").send_keys(pyotp.TOTP(secret).now())
        click(driver, button("Add the app"))
        heading(driver, "Sign-in security")
        listed = driver.find_element(By.CSS_SELECTOR, "ul.cards").text
        assert all(kind in listed for kind in ("Passkey", "Authenticator app", "Recovery codes")), listed
        _scroll_to(driver, "p[role=status]")  # "phone was added.", the factors and the forms to add more
        _shot(driver, out, "security-page.png")

        _step_up(driver, rp, out)
        _passkey_sign_in(driver, rp, out)
        _passkey_sign_up(driver, rp, out)


def _size_the_page(driver: WebDriver, window: tuple[int, int] = WINDOW) -> None:
    """The window so large that the page inside it is ``window`` (width, height)."""
    driver.set_window_size(*window)
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    driver.set_window_size(2 * window[0] - int(inner[0]), 2 * window[1] - int(inner[1]))


def _scroll_to(driver: WebDriver, selector: str) -> None:
    """Scroll so that the element is near the top (the pages are longer than the window; nothing is cropped)."""
    driver.execute_script("window.scrollTo(0, document.querySelector(arguments[0]).getBoundingClientRect().top"
                          " + window.scrollY - 12)", selector)


def _portal_sign_in(driver: WebDriver, fed: Federation) -> None:
    driver.get(fed.url + "/account/")
    heading(driver, "Your account")
    click(driver, button("Sign in"))
    _sign_in_upstream(driver)
    wait(driver).until(lambda d: d.find_elements(By.LINK_TEXT, "Sign-in security"))


def _sign_in_upstream(driver: WebDriver) -> None:
    """Through the discovery page (two providers here) to the demo provider's form, and sign in there."""
    if _headed(driver, CHOOSE, PROVIDER) == CHOOSE:
        click(driver, button("Sign in with Test OpenID provider"))
    at_the_provider(driver)


def _headed(driver: WebDriver, *titles: str) -> str:
    """Which of ``titles`` the page's heading shows, once it shows one."""
    found = wait(driver).until(lambda d: next((t for t in titles if t in d.find_element(By.TAG_NAME, "h1").text),
                                              None))
    assert found is not None  # the wait ends on a title only
    return found


def _start_adding_the_app(driver: WebDriver, name: str) -> None:
    field = wait(driver).until(lambda d: d.find_element(By.ID, "name"))
    field.clear()
    field.send_keys(name)
    click(driver, (By.CSS_SELECTOR, "form#add-app button[type=submit]"))


def _step_up_enrol(driver: WebDriver, rp: RelyingParty, out: Path) -> None:
    """The app asks for MFA at the first sign-in: the account would have no factor, so the broker offers to add
    an authenticator app. Left there (see the module's docstring): the app hears nothing."""
    driver.get(f"{rp.url}/login?{urlencode({'claims': MFA_ESSENTIAL})}")
    _sign_in_upstream(driver)
    heading(driver, "Add a second factor")
    wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, "main svg"))
    _shot(driver, out, "step-up-enrol.png")
    assert rp.outcomes == [], rp.outcomes


def _step_up(driver: WebDriver, rp: RelyingParty, out: Path) -> None:
    """The app asks for MFA; ``prompt=login`` so that the portal's stronger sign-in does not answer it."""
    driver.get(f"{rp.url}/login?{urlencode({'claims': MFA_ESSENTIAL, 'prompt': 'login'})}")
    _sign_in_upstream(driver)
    heading(driver, "Confirm it is you")
    wait(driver).until(lambda d: d.find_element(By.ID, "use-passkey").is_displayed())
    assert driver.find_elements(By.ID, "code"), page_says(driver)
    _shot(driver, out, "step-up.png")
    click(driver, (By.ID, "use-passkey"))
    claims = _answered(driver, rp, 1)
    assert claims["acr"] == REFEDS_MFA, claims


def _passkey_sign_in(driver: WebDriver, rp: RelyingParty, out: Path) -> None:
    """The discovery page's "Sign in with a passkey", and the page it leads to."""
    driver.get(f"{rp.url}/login?{urlencode({'prompt': 'login'})}")
    heading(driver, CHOOSE)
    click(driver, (By.CSS_SELECTOR, "form#passkey-sign-in button"))
    heading(driver, "Sign in with a passkey")
    wait(driver).until(lambda d: d.find_element(By.ID, "use-passkey").is_displayed())
    _shot(driver, out, "passkey-sign-in.png")
    click(driver, (By.ID, "use-passkey"))
    claims = _answered(driver, rp, 2)
    assert "hwk" in claims["amr"], claims


def _passkey_sign_up(driver: WebDriver, rp: RelyingParty, out: Path) -> None:
    """The discovery page's "Create an account with a passkey", and the page it leads to."""
    driver.get(f"{rp.url}/login?{urlencode({'prompt': 'login'})}")
    to_the_passkey_sign_up(driver)
    _shot(driver, out, "passkey-sign-up.png")
    sign_up_with_a_passkey(driver, "Anna")
    claims = _answered(driver, rp, 3)
    assert claims["acr"] == REFEDS_MFA and {"hwk", "user", "mfa"} <= set(claims["amr"]), claims


def _answered(driver: WebDriver, rp: RelyingParty, count: int) -> dict[str, Any]:
    wait(driver).until(lambda _: len(rp.outcomes) >= count)
    outcome = rp.last
    assert outcome.error is None and outcome.id_token_claims is not None, (outcome.error, outcome.callback_args)
    return outcome.id_token_claims


def _main_text(driver: WebDriver) -> str:
    return str(driver.find_element(By.TAG_NAME, "main").text)


def _shot(driver: WebDriver, out: Path, name: str) -> None:
    path = out / name
    if not driver.save_screenshot(str(path)):
        raise RuntimeError(f"Chromium saved no screenshot {name} {page_says(driver)}")
    _optimise(path)
    print(f"{path}: {path.stat().st_size} bytes")


def _optimise(path: Path) -> None:
    """A 256-colour palette when Pillow is installed (the pages have few colours); as saved otherwise."""
    try:
        image_module: Any = importlib.import_module("PIL.Image")
    except ImportError:
        return
    with image_module.open(path) as image:
        small = image.convert("RGB").quantize(colors=256)
    packed = path.with_suffix(".tmp.png")
    small.save(packed, optimize=True)
    if packed.stat().st_size < path.stat().st_size:
        packed.replace(path)
    else:
        packed.unlink()


if __name__ == "__main__":
    sys.exit(main())
