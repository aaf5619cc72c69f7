"""``[limits] per_ip_sign_up`` over real https (issue 17): answers to "Create an account with a passkey" are
limited per client address (``broker.web.ops.limits.SIGN_UP_VIEWS``), and once over the limit the broker answers
HTTP 429 with ``Retry-After`` (RFC 6585 §4) before the answer is even looked at.

The broker is named "localhost" in its ``base_url``: passkeys, and so the sign-up, are only wired for a host name
(WebAuthn wants a domain as the relying party ID); a second provider gives the app a choice, so its sign-in stops
at the discovery page, where the sign-up is offered. The answers posted here are not WebAuthn at all, so the broker
refuses each one and shows the page again; the limiter counts them all the same (it counts every request that
reaches the view, whatever the answer), which is what stops a bot from trying without end. (A post the CSRF or
origin check refuses never reaches the view, so it is not counted.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.databases import BACKENDS, database_for
from tests.flows.federation import ExtraUpstream, Federation, running_federation
from tests.flows.linking_support import DemoUpstream
from tests.peers.browser import Browser

SIGN_UP_LIMIT = 2
LIMITS = f"""
[limits]
per_ip_sign_up = "{SIGN_UP_LIMIT}/hour"
"""
NOT_WEBAUTHN = '{"id": "x", "type": "public-key", "response": {}}'
REFUSED = "No account was created"


@pytest.fixture(params=BACKENDS)
def named_federation(request: pytest.FixtureRequest, tmp_path: Path, key_folder: Path) -> Iterator[Federation]:
    database = database_for(request.param, tmp_path)
    try:
        with running_federation(tmp_path / "instance", key_folder, next(database), extra_config=LIMITS,
                                broker_host="localhost",
                                extra_upstreams=[ExtraUpstream("other", DemoUpstream("other").build)]) as running:
            yield running
    finally:
        for _ in database:  # drops the PostgreSQL schema
            pass


def sign_up_page(federation: Federation, browser: Browser) -> requests.Response:
    """An app's sign-in stopped at the discovery page, and "Create an account with a passkey" pressed."""
    _, discovery = federation.login(browser, "sp1")
    assert discovery.status_code == 200 and "Create an account with a passkey" in discovery.text, \
        discovery.text[:500]
    page = browser.submit(discovery, form="passkey-sign-up")
    assert page.status_code == 200 and 'id="create-account-passkey"' in page.text, page.text[:500]
    return page


def answer(browser: Browser, page: requests.Response) -> requests.Response:
    """What passkey.js would post, with an answer that is not a WebAuthn registration response."""
    return browser.submit(page, {"credential": NOT_WEBAUTHN, "name": "Bot"}, form="create-account-passkey")


def test_sign_up_answers_over_the_per_address_limit_get_429_with_retry_after(named_federation: Federation,
                                                                            browser: Browser) -> None:
    federation = named_federation
    assert federation.url.startswith("https://localhost:")
    accounts = federation.accounts()
    page = sign_up_page(federation, browser)

    answers = []
    for _ in range(SIGN_UP_LIMIT):
        page = answer(browser, page)
        answers.append(page)

    # within the limit: each refused as a bad answer (the page again, no account), and each counted
    assert [a.status_code for a in answers] == [200] * SIGN_UP_LIMIT
    assert all(REFUSED in a.text and 'id="create-account-passkey"' in a.text for a in answers)
    over = answer(browser, page)

    assert over.status_code == 429, over.text[:500]
    retry_after = int(over.headers["Retry-After"])
    assert 0 < retry_after <= 3600
    assert REFUSED not in over.text  # the limiter answered; the sign-up journey never saw the request
    assert federation.accounts() == accounts

    # the limit is per address, not per page: a new sign-in's sign-up page is refused too
    with Browser() as other_tab:
        assert answer(other_tab, sign_up_page(federation, other_tab)).status_code == 429
    assert federation.accounts() == accounts
