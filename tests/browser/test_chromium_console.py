"""The operator console in a real browser (issue 19): Debian's Chromium with a WebAuthn virtual authenticator
(``tests/browser/chromium_support.py``) against the broker at ``https://localhost:<port>``, with two providers
registered so that a login naming none shows the discovery page.

One journey: a person creates an account with a passkey in the portal (the discovery page's "Create an account
with a passkey") and is granted ``operator`` on the server; at ``/console/`` "Sign in to the console" is a fresh
login as the built-in party ``broker-console`` (``force_authn``, ``[console] required_acr`` REFEDS MFA by
default): "Sign in with a passkey" on its discovery page reaches that level with no step-up (the passkey with
user verification is two factors) and opens the console's home. Apps, "Register an app": the metadata of a new
pysaml2 SP is uploaded with the file input, named "Library loans", and "Check and preview" shows what the broker
read (entity ID, ACS URL, the certificate's SHA-256 fingerprint) and the diff (a new app); "Apply" registers it.
A citizen (the scripted browser of ``tests.peers.browser``, through the demo provider's form) then signs in to
that app and the SP accepts the broker's signed Response; after a rollup the analytics page counts it.

Screenshots of the console's home, the preview and the analytics page (1280 px wide, light theme) are taken with
the screenshot script's helper; into ``BROKER_SCREENSHOTS`` when set (``docs/img``: ``console-home.png``,
``console-app-preview.png``, ``console-analytics-summary.png``, ``console-analytics.png``), else into the test's
temporary folder.

Chromium missing: skipped, unless ``BROKER_TEST_BROWSER=required`` (CI), then failed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from broker.analytics import rollup
from broker.core.operators import OperatorGrant, Role
from broker.storage.tables import AccountRow
from tests.browser import chromium_support
from tests.browser.chromium_support import (
    button,
    click,
    heading,
    missing,
    page_says,
    sign_up_with_a_passkey,
    to_the_passkey_sign_up,
    wait,
)
from tests.flows.federation import CITIZEN, Federation, make_keys, running_federation, saml_status
from tests.flows.portal_support import services
from tests.flows.saml_peers import SpKeys, TestSp
from tests.peers.browser import Browser
from tests.peers.servers import closed_port_url
from tests.peers.tls import throwaway_ca, trusted_by_requests

REQUIRED = os.environ.get("BROKER_TEST_BROWSER") == "required"
WINDOW = (1280, 800)
APP_NAME = "Library loans"
CHOOSE = "Choose how to sign in"


if (why := missing()) is not None:
    if REQUIRED:
        pytest.fail(f"BROKER_TEST_BROWSER=required but {why}", pytrace=False)
    pytest.skip(why, allow_module_level=True)

from selenium import webdriver  # noqa: E402  (after the check above, which may skip)
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402

from tests.browser.screenshots import _scroll_to, _shot, _size_the_page  # noqa: E402  (imports selenium)


@pytest.fixture
def key_folder(tmp_path: Path) -> Path:
    return make_keys(tmp_path / "keys")


@pytest.fixture
def federation(tmp_path: Path, key_folder: Path) -> Iterator[Federation]:
    with running_federation(tmp_path / "instance", key_folder, f"sqlite:///{tmp_path / 'b.db'}", op_login_form=True,
                            broker_host="localhost") as fed:
        # a second provider (never reached), so that a login naming none is shown the discovery page
        (fed.folder / "metadata" / "upstreams" / "city.json").write_text(json.dumps({
            "name": "city", "protocol": "oidc", "issuer": closed_port_url(), "client_id": "broker",
            "display_name": "City identity", "client_secret_file": "certs/op-client.secret"}))
        fed.app.extensions["broker"].registry.reload()
        yield fed


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[WebDriver]:
    with chromium_support.chromium(tmp_path / "profile", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                                   "--force-device-scale-factor=1", "--hide-scrollbars") as driver:
        _size_the_page(driver, WINDOW)
        assert isinstance(driver, webdriver.Chrome)
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia",  # the light theme, whatever the machine's
                               {"features": [{"name": "prefers-color-scheme", "value": "light"}]})
        yield driver


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BROKER_SCREENSHOTS", "") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_an_operator_signs_in_with_a_passkey_registers_a_saml_app_and_a_citizen_signs_in_to_it(
        federation: Federation, chromium: WebDriver, key_folder: Path, shots: Path) -> None:
    svc = services(federation)
    assert svc.operators is not None

    # (1) an account made with a passkey in the portal, granted ``operator`` on the server
    chromium.get(federation.url + "/account/")
    heading(chromium, "Your account")
    click(chromium, button("Sign in"))
    to_the_passkey_sign_up(chromium)
    sign_up_with_a_passkey(chromium, "Olli")
    wait(chromium).until(lambda d: d.find_elements(By.LINK_TEXT, "Sign-in security"))
    account = _the_only_account(federation)
    svc.operators.grant(OperatorGrant(account, Role.OPERATOR, "test", svc.clock.now()))

    # (2) the console: a fresh sign-in, "Sign in with a passkey" on the discovery page, and no step-up after it
    chromium.get(federation.url + "/console/")
    heading(chromium, "Operator console")
    assert not chromium.find_elements(By.CSS_SELECTOR, "nav[aria-label='Operator console']"), page_says(chromium)
    click(chromium, button("Sign in to the console"))
    heading(chromium, CHOOSE)
    assert "Operator console asks you to sign in" in _main(chromium)
    click(chromium, (By.CSS_SELECTOR, "form#passkey-sign-in button"))
    heading(chromium, "Sign in with a passkey")
    click(chromium, (By.ID, "use-passkey"))
    try:  # the console's home (its nav), not a step-up ("Confirm it is you") nor the sign-in page again
        wait(chromium).until(lambda d: d.current_url == federation.url + "/console/"
                             and d.find_elements(By.CSS_SELECTOR, "nav[aria-label='Operator console']"))
    except TimeoutException:
        raise AssertionError(f"the console did not open {page_says(chromium)}") from None
    heading(chromium, "Operator console")
    home = _main(chromium)
    assert account in home and "operator" in home and "manage-parties" in home, home
    assert "manage-operators" not in home and "reveal-claims" not in home, home  # admin's, not operator's
    _shot(chromium, shots, "console-home.png")

    # (3) Apps, "Register an app": the new SP's metadata uploaded, named, previewed
    sp = _new_sp(federation, key_folder)
    click(chromium, (By.LINK_TEXT, "Apps"))
    heading(chromium, "Apps")
    assert sp.entity_id not in _main(chromium)
    click(chromium, (By.LINK_TEXT, "Register an app"))
    heading(chromium, "Register an app")
    upload = key_folder / "sp3-metadata.xml"
    upload.write_text(sp.metadata())
    chromium.find_element(By.ID, "file").send_keys(str(upload))
    chromium.find_element(By.ID, "display_name").send_keys(APP_NAME)
    click(chromium, button("Check and preview"))
    heading(chromium, "Preview of the registration")
    facts = chromium.find_element(By.ID, "facts").text
    assert sp.entity_id in facts and sp.acs_url in facts, facts
    assert f"SHA-256 {_fingerprint(key_folder / 'sp3' / 'signing.crt')}" in facts, facts
    changes = chromium.find_element(By.ID, "changes")
    assert "A new app" in changes.find_element(By.TAG_NAME, "caption").text, changes.text
    assert APP_NAME in changes.text and sp.entity_id in changes.text, changes.text
    assert sp.entity_id not in _app_ids(federation)  # a preview writes nothing
    _scroll_to(chromium, "main h2")  # from "What the broker read" into the diff
    _shot(chromium, shots, "console-app-preview.png")

    # (4) "Apply": registered and served
    click(chromium, button("Apply"))
    heading(chromium, "App registered")
    assert sp.entity_id in chromium.find_element(By.CSS_SELECTOR, "[role=status]").text, page_says(chromium)
    click(chromium, (By.LINK_TEXT, "Back to the apps"))
    heading(chromium, "Apps")
    row = chromium.find_element(By.XPATH, f"//tr[td/code[normalize-space()={json.dumps(sp.entity_id)}]]").text
    assert APP_NAME in row and "yes" in row, row

    # (5) a citizen signs in to the new app: the SP accepts the broker's signed Response
    with Browser() as citizen:
        request_id, location = sp.redirect_request()
        choose = citizen.get(location)
        assert choose.status_code == 200 and CHOOSE in choose.text and APP_NAME in choose.text, choose.text[:500]
        at_provider = citizen.submit(choose, form=_form_posting_to(citizen, choose, "/op"))
        answer = citizen.submit(at_provider, {"username": CITIZEN.username, "password": CITIZEN.password})
        fields = citizen.form_fields(answer)
        assert saml_status(fields)[0].endswith(":Success"), answer.text[:500]
        assert sp.parse(fields["SAMLResponse"], request_id) is not None

    # (6) the figures, rolled up as the worker does
    assert rollup(svc.engine, svc.clock.now()).records > 0
    click(chromium, (By.LINK_TEXT, "Analytics"))
    heading(chromium, "Analytics")
    summary = chromium.find_element(By.ID, "summary").text
    assert "Citizens signed in" in summary and "Login time, median / 95th percentile" in summary, summary
    _scroll_to(chromium, "h2")  # the summary: citizens, linking, second factors, login time
    _shot(chromium, shots, "console-analytics-summary.png")
    assert sp.entity_id in _main(chromium)  # its sign-in, in the table of sign-ins by app
    wait(chromium).until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('main img')].every(i => i.complete && i.naturalWidth > 0)"))
    _scroll_to(chromium, "section[aria-labelledby=figure-sign-ins-by-app]")  # a chart, the new app in its legend
    _shot(chromium, shots, "console-analytics.png")


def _main(driver: WebDriver) -> str:
    return str(driver.find_element(By.TAG_NAME, "main").text)


def _the_only_account(federation: Federation) -> str:
    with services(federation).engine.connect() as connection:
        [account] = connection.execute(select(AccountRow.account_id)).scalars().all()
    return str(account)


def _new_sp(federation: Federation, key_folder: Path) -> TestSp:
    sp = TestSp("http://127.0.0.1:9/sp3", SpKeys(key_folder / "sp3" / "signing.key",
                                                 key_folder / "sp3" / "signing.crt"))
    with trusted_by_requests(throwaway_ca()):
        sp.connect(requests.get(federation.url + "/saml2/idp/metadata", timeout=10).text)
    return sp


def _fingerprint(pem_file: Path) -> str:
    """A certificate's SHA-256 fingerprint as the console shows it (upper-case hex pairs, colon-separated)."""
    body = "".join(line for line in pem_file.read_text().splitlines() if "-----" not in line)
    digest = hashlib.sha256(base64.b64decode(body)).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def _form_posting_to(browser: Browser, page: requests.Response, path_end: str) -> int:
    """The index of the page's form whose action ends with ``path_end`` (a discovery page's provider button)."""
    actions = [a.split('"')[0] for a in page.text.split('action="')[1:]]
    found = [i for i, a in enumerate(actions) if a.endswith(path_end)]
    assert len(found) == 1, actions
    browser.form_fields(page, found[0])  # it is a form, as the browser parses it
    return found[0]


def _app_ids(federation: Federation) -> set[str]:
    apps = services(federation).journeys.apps
    assert apps is not None
    return {a.party_id for a in apps.apps()}
