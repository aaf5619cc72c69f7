"""A citizen with only a passkey can sign in (issue 17), in a real browser: Debian's Chromium with a WebAuthn
virtual authenticator (``tests/browser/chromium_support.py``) against the broker at ``https://localhost:<port>``.

An OpenID app (the authlib relying party) names no provider; with two registered the broker shows the discovery
page, which offers passkeys. The person has no account anywhere: "Create an account with a passkey", a name
typed, and the authenticator makes a discoverable credential with user verification for the RP ID "localhost"
(``broker.journeys.passkey_signup``). The app's ID token says ``acr`` REFEDS MFA and ``amr`` hwk (Chromium's
virtual authenticator is not backup-eligible, so the passkey is not a synced one: WebAuthn §6.1.3), user and mfa;
the broker holds exactly one account. Then a fresh browser session (every cookie gone, the same authenticator):
"Sign in with a passkey" on the discovery page (``broker.journeys.passwordless``) signs the same account in, and
the app sees the same ``sub``.

Chromium missing: skipped, unless ``BROKER_TEST_BROWSER=required`` (CI), then failed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.core.assurance import REFEDS_MFA
from tests.browser import chromium_support
from tests.browser.chromium_support import (
    click,
    heading,
    missing,
    page_says,
    sign_up_with_a_passkey,
    to_the_passkey_sign_up,
    wait,
)
from tests.flows.federation import Federation, make_keys, running_federation
from tests.flows.oidc_peers import RelyingParty, relying_party
from tests.peers.servers import closed_port_url

REQUIRED = os.environ.get("BROKER_TEST_BROWSER") == "required"


if (why := missing()) is not None:
    if REQUIRED:
        pytest.fail(f"BROKER_TEST_BROWSER=required but {why}", pytrace=False)
    pytest.skip(why, allow_module_level=True)

from selenium import webdriver  # noqa: E402  (after the check above, which may skip)
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions as seen  # noqa: E402


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[Federation]:
    keys = make_keys(tmp_path / "keys")
    with running_federation(tmp_path / "instance", keys, f"sqlite:///{tmp_path / 'b.db'}", op_login_form=True,
                            broker_host="localhost") as fed:
        # a second provider (never reached), so that an app naming none is shown the discovery page
        (fed.folder / "metadata" / "upstreams" / "city.json").write_text(json.dumps({
            "name": "city", "protocol": "oidc", "issuer": closed_port_url(), "client_id": "broker",
            "display_name": "City identity", "client_secret_file": "certs/op-client.secret"}))
        fed.app.extensions["broker"].registry.reload()
        yield fed


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[WebDriver]:
    with chromium_support.chromium(tmp_path / "profile") as driver:
        yield driver


def test_an_account_created_with_a_passkey_signs_in_again_with_it(federation: Federation,
                                                                  chromium: WebDriver) -> None:
    assert federation.accounts() == 0
    with relying_party(federation) as rp:
        # (1) no account: the discovery page's "Create an account with a passkey", a name, the passkey made
        chromium.get(f"{rp.url}/login")
        to_the_passkey_sign_up(chromium)
        assert chromium.get_credentials() == []
        sign_up_with_a_passkey(chromium, "Anna")
        signed_up = _answered(chromium, rp, 1)
        [credential] = chromium.get_credentials()
        assert credential.is_resident_credential and credential.rp_id == "localhost"
        assert credential.user_handle  # the broker's random handle, not the name typed
        assert signed_up["acr"] == REFEDS_MFA, signed_up
        assert {"hwk", "user", "mfa"} <= set(signed_up["amr"]) and "swk" not in signed_up["amr"], signed_up
        assert federation.accounts() == 1
        userinfo = rp.last.userinfo
        assert userinfo is not None and userinfo["sub"] == signed_up["sub"], userinfo
        assert userinfo.get("name") == "Anna" and "email" not in userinfo, userinfo  # the name typed, nothing else

        # (2) a fresh session (the broker's and the app's cookies gone), the same authenticator: the same account
        assert isinstance(chromium, webdriver.Chrome)
        chromium.execute_cdp_cmd("Network.clearBrowserCookies", {})
        chromium.get(f"{rp.url}/login")
        heading(chromium, "Choose how to sign in")  # no SSO session answered the app
        click(chromium, (By.CSS_SELECTOR, "form#passkey-sign-in button"))
        heading(chromium, "Sign in with a passkey")
        click(chromium, (By.ID, "use-passkey"))
        signed_in = _answered(chromium, rp, 2)
        assert signed_in["sub"] == signed_up["sub"], (signed_in, signed_up)
        assert signed_in["acr"] == REFEDS_MFA and {"hwk", "user", "mfa"} <= set(signed_in["amr"]), signed_in
        assert federation.accounts() == 1
        [used] = chromium.get_credentials()
        assert used.id == credential.id and used.sign_count > credential.sign_count


def _answered(driver: WebDriver, rp: RelyingParty, count: int) -> dict[str, Any]:
    """The ID token's claims once the app has heard its ``count``-th answer, an error failing the test."""
    try:
        wait(driver).until(lambda _: len(rp.outcomes) >= count)
    except TimeoutException:
        raise AssertionError(f"the app heard nothing {page_says(driver)}") from None
    outcome = rp.last
    assert outcome.error is None, (outcome.error, outcome.error_description, outcome.callback_args)
    assert outcome.id_token_claims is not None, outcome
    wait(driver).until(seen.url_contains(f"{rp.url}/callback"))
    return outcome.id_token_claims
