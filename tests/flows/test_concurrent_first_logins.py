"""Many simultaneous first logins of one upstream identity make exactly one account (issue 5, concurrency).

Fifty browsers, each with its own cookies, start a SAML login at the same SP, are sent to the OpenID provider
and signed in there, and stop just before the broker's callback. They then all call the callback at once, so
every one of them runs "find the account, else create it" at the same moment over the running broker's HTTP
server. The unique (issuer, subject) constraint lets one insert win; the others find the winner's account
(``SqlAccountStore.create_with_identity``). Every citizen must end at the SP with a valid SAML Response for
the same account, never an error page.

PostgreSQL (``BROKER_TEST_DATABASE_URL``) runs all 50 at once. SQLite serializes writers (each waits on the
busy timeout), so it runs the same test with 10 browsers: same assertions, less waiting.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from saml2 import samlp

from broker.storage.tables import LinkedIdentityRow
from tests.databases import BACKENDS, database_for
from tests.flows.federation import UPSTREAM, Federation, running_federation, saml_status
from tests.peers.browser import REDIRECT_STATUSES, Browser

BROWSERS = {"postgresql": 50, "sqlite": 10}
HIGH = "1000000/minute"  # every browser comes from 127.0.0.1: the per-address limit must not be what is tested
LIMITS = f'\n[limits]\nper_ip = "{HIGH}"\nper_upstream = "{HIGH}"\nper_downstream = "{HIGH}"\n'


@pytest.fixture(params=BACKENDS)
def busy_federation(request: pytest.FixtureRequest, tmp_path: Path, key_folder: Path) -> Iterator[Federation]:
    database = database_for(request.param, tmp_path)
    try:
        with running_federation(tmp_path / "instance", key_folder, next(database), extra_config=LIMITS) as running:
            yield running
    finally:
        for _ in database:  # drops the PostgreSQL schema
            pass


def _to_the_callback(browser: Browser, start: str, callback: str) -> str:
    """Follow redirects from ``start`` (the broker, then the provider's sign-in) up to the broker's callback."""
    url = start
    for _ in range(10):
        response = browser.get(url, follow=False)
        assert response.status_code in REDIRECT_STATUSES, (response.status_code, response.text[:300])
        url = urljoin(response.url, response.headers["Location"])
        if url.startswith(callback):
            return url
    raise AssertionError(f"never reached {callback}")


def test_simultaneous_first_logins_of_one_identity_make_one_account(
        busy_federation: Federation, caplog: pytest.LogCaptureFixture) -> None:
    federation = busy_federation
    backend = "postgresql" if federation.database_url.startswith("postgresql") else "sqlite"
    count = BROWSERS[backend]
    sp = federation.sps["sp1"]
    callback = f"{federation.url}/upstream/oidc/{UPSTREAM}/callback"
    requests_made = [sp.redirect_request() for _ in range(count)]  # pysaml2's client, from this thread only
    browsers = [Browser(timeout=120) for _ in range(count)]
    at_the_door = threading.Barrier(count, timeout=120)

    def citizen(index: int) -> requests.Response:
        browser = browsers[index]
        callback_url = _to_the_callback(browser, requests_made[index][1], callback)
        at_the_door.wait()  # every browser is signed in upstream; now all come back at once
        return browser.get(callback_url)

    assert federation.accounts() == 0
    try:
        with caplog.at_level(logging.INFO, logger="broker.journeys.login"), ThreadPoolExecutor(count) as pool:
            pages = list(pool.map(citizen, range(count)))  # re-raises any browser's exception

        subjects = set()
        for (request_id, _), page, browser in zip(requests_made, pages, browsers, strict=True):
            assert page.status_code == 200, page.text[:500]
            assert browser.is_self_submitting(page), page.text[:500]  # the page posting to the SP, no error
            fields = browser.form_fields(page)
            assert saml_status(fields) == (samlp.STATUS_SUCCESS, None)
            response = sp.parse(fields["SAMLResponse"], request_id)  # signature checked by xmlsec1
            assert response.get_identity()["mail"] == ["anna@example.org"]
            subjects.add(response.get_subject().text)
    finally:
        for browser in browsers:
            browser.close()

    assert len(subjects) == 1  # one account, so one persistent NameID at this SP
    assert federation.accounts() == 1
    assert federation.count(LinkedIdentityRow) == 1
    outcomes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("login ok ")]
    assert len(outcomes) == count
    assert sum(message.endswith("created=True") for message in outcomes) == 1

