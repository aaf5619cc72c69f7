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

Chromium missing: skipped, unless ``BROKER_TEST_BROWSER=required`` (CI), then failed. The browser and the
steps are in ``tests/browser/chromium_support.py`` (shared with the documentation's screenshots).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.core.assurance import REFEDS_MFA
from tests.browser import chromium_support
from tests.browser.chromium_support import (
    add_passkey,
    click,
    heading,
    missing,
    page_says,
    portal_sign_in,
    to_the_step_up_page,
    wait,
)
from tests.flows.federation import Federation, make_keys, running_federation
from tests.flows.oidc_peers import relying_party

REQUIRED = os.environ.get("BROKER_TEST_BROWSER") == "required"


if (why := missing()) is not None:
    if REQUIRED:
        pytest.fail(f"BROKER_TEST_BROWSER=required but {why}", pytrace=False)
    pytest.skip(why, allow_module_level=True)

from selenium.common.exceptions import TimeoutException  # noqa: E402  (after the check above, which may skip)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions as seen  # noqa: E402


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[Federation]:
    keys = make_keys(tmp_path / "keys")
    with running_federation(tmp_path / "instance", keys, f"sqlite:///{tmp_path / 'b.db'}", op_login_form=True,
                            broker_host="localhost") as fed:
        yield fed


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[WebDriver]:
    with chromium_support.chromium(tmp_path / "profile") as driver:
        yield driver


def test_a_passkey_added_in_the_portal_answers_an_apps_mfa_step_up(federation: Federation,
                                                                   chromium: WebDriver) -> None:
    portal_sign_in(chromium, federation)

    # (1) the portal: a passkey named "laptop", made by the browser's authenticator
    add_passkey(chromium, federation, "laptop")

    codes = chromium.find_elements(By.CSS_SELECTOR, "ol.recovery-codes li code")
    assert len(codes) == 10 and "laptop was added." in chromium.find_element(By.TAG_NAME, "main").text
    [credential] = chromium.get_credentials()
    assert credential.is_resident_credential and credential.rp_id == "localhost"
    assert credential.user_handle  # the broker's random handle for the account, kept by the authenticator
    click(chromium, (By.LINK_TEXT, "I have written them down"))
    heading(chromium, "Sign-in security")
    listed = chromium.find_element(By.CSS_SELECTOR, "ul.cards").text
    assert "laptop" in listed and "Passkey" in listed and "Recovery codes" in listed

    with relying_party(federation) as rp:
        # (3) the app asks for MFA; the authenticator cannot verify the person: no token for the app
        to_the_step_up_page(chromium, rp)
        chromium.set_user_verified(False)
        click(chromium, (By.ID, "use-passkey"))
        refused = wait(chromium).until(_passkey_refused)
        assert refused in {"browser", "broker"}  # Chromium's: UV is required, the authenticator fails it
        assert rp.outcomes == [], "the app got an answer although the passkey did not pass"
        [after_refusal] = chromium.get_credentials()
        assert after_refusal.id == credential.id

        # (2) the person verifies: the same step-up, and the app's ID token says MFA with a hardware key
        chromium.set_user_verified(True)
        click(chromium, (By.ID, "use-passkey"))
        try:
            wait(chromium).until(lambda _: rp.outcomes)
        except TimeoutException:
            raise AssertionError(f"the app heard nothing {page_says(chromium)}") from None

        outcome = rp.last
        assert outcome.error is None, (outcome.error, outcome.error_description, outcome.callback_args)
        claims = outcome.id_token_claims
        assert claims is not None and claims["acr"] == REFEDS_MFA, claims
        assert {"hwk", "user", "mfa"} <= set(claims["amr"]), claims
        assert outcome.userinfo is not None and outcome.userinfo["sub"] == claims["sub"]
        wait(chromium).until(seen.url_contains(f"{rp.url}/callback"))
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
