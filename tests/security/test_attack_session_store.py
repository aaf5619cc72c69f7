"""A copy of the session store is no set of live sessions, and anonymous visitors fill no store (issue 15,
points 2 and 3).

- The server-side record of a browser session (a ``browser_sessions`` row, or a Redis key) is found under a
  keyed hash of the cookie's value (``broker.web.http.session_ids``): after a real sign-in the cookie's value
  appears nowhere in the store, and a stored id set as the cookie opens nothing.
- Anonymous GETs (the portal's signed-out pages, authorization requests that are refused before a login needs
  state, the home page) write no session record and send no session cookie.

On SQLite, PostgreSQL (``BROKER_TEST_DATABASE_URL``) and Redis (``BROKER_TEST_REDIS_URL``). The Redis set-up
uses its own logical database (``REDIS_DB``), so keys of other test runs on the same Redis are not counted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from sqlalchemy import text

from broker.app import SESSION_COOKIE_HTTPS
from tests.databases import database_for
from tests.flows.conftest import REDIS_ENV, SETUPS
from tests.flows.federation import Federation, running_federation
from tests.peers.browser import Browser
from tests.peers.tls import throwaway_ca

#: the Redis logical database of these tests (the other flow tests use the URL's own, usually 0)
REDIS_DB = 11
PREFIX = "broker:"
ANONYMOUS = ["/", "/account/", "/account/identities", "/account/data.json", "/oidc/authorize",
             "/oidc/authorize?client_id=unknown&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code"
             "&scope=openid&state=s"]


def _own_redis_db(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{REDIS_DB}", parts.query, parts.fragment))


@pytest.fixture(params=SETUPS)
def federation(request: pytest.FixtureRequest, tmp_path: Path, key_folder: Path) -> Iterator[Federation]:
    backend, _, sessions = request.param.partition("+")
    redis_url = _own_redis_db(os.environ[REDIS_ENV]) if sessions == "redis" else None
    database = database_for(backend, tmp_path)
    try:
        with running_federation(tmp_path / "instance", key_folder, next(database), redis_url) as running:
            if redis_url:
                _redis(running).flushdb()  # this logical database is these tests' own
            yield running
    finally:
        for _ in database:
            pass


def _redis(federation: Federation) -> Any:
    return federation.app.config.get("SESSION_REDIS")


def _stored_sessions(federation: Federation) -> dict[str, bytes]:
    """Every stored browser session as (stored id, stored data), raw from the store."""
    client = _redis(federation)
    if client is not None:
        return {key.decode(): client.get(key) for key in client.scan_iter(PREFIX + "*")
                if b":pending:" not in key and not key.startswith(b"broker:https://")}
    database = federation.app.config["SESSION_SQLALCHEMY"]
    with federation.app.app_context(), database.engine.connect() as connection:
        rows = connection.execute(text("SELECT session_id, data FROM browser_sessions"))
        return {str(sid): bytes(data) for sid, data in rows}


def _sign_in(federation: Federation, browser: Browser) -> str:
    """The portal's own sign-in, through the demo provider; the session cookie's value."""
    page = browser.get(f"{federation.url}/account/")
    home = browser.submit(page)
    assert home.status_code == 200 and "Sign-in methods" in home.text, home.text[:300]
    cookie = browser.session.cookies.get(SESSION_COOKIE_HTTPS)
    assert cookie
    return str(cookie)


def _download(federation: Federation, cookie: str) -> requests.Response:
    return requests.get(f"{federation.url}/account/data.json", cookies={SESSION_COOKIE_HTTPS: cookie},
                        verify=str(throwaway_ca().ca_file), timeout=10, allow_redirects=False)


def test_the_session_store_holds_no_cookie_value(federation: Federation, browser: Browser) -> None:
    cookie = _sign_in(federation, browser)

    stored = _stored_sessions(federation)
    assert len(stored) == 1
    [(stored_id, data)] = stored.items()
    assert stored_id.startswith(PREFIX) and len(stored_id) == len(PREFIX) + 64
    assert cookie not in stored_id and cookie.encode() not in data
    assert b"sso" in data  # the record found is the signed-in session


def test_a_stored_session_id_set_as_the_cookie_opens_nothing(federation: Federation, browser: Browser) -> None:
    cookie = _sign_in(federation, browser)
    assert _download(federation, cookie).status_code == 200  # the real cookie opens the account's data
    [stored_id] = _stored_sessions(federation)

    stolen = _download(federation, stored_id.removeprefix(PREFIX))

    assert stolen.status_code == 400 and "anna" not in stolen.text.lower()
    assert _download(federation, stored_id).status_code == 400


def test_a_new_session_id_at_sign_in_leaves_no_record_of_the_old_one(
        federation: Federation, browser: Browser) -> None:
    """Regeneration (session fixation, at sign-in) still deletes the old record, now found by its hash."""
    page = browser.get(f"{federation.url}/account/")
    browser.post(f"{federation.url}/account/sign-in", {}, initiator=page.url, follow=False)  # opens a session
    before = browser.session.cookies.get(SESSION_COOKIE_HTTPS)
    assert before and len(_stored_sessions(federation)) == 1
    browser.session.cookies.clear()
    browser.session.cookies.set(SESSION_COOKIE_HTTPS, before, domain=urlsplit(federation.url).hostname or "",
                                path="/", secure=True)

    after = _sign_in(federation, browser)

    assert after != before
    assert len(_stored_sessions(federation)) == 1 and _download(federation, before).status_code == 400


def test_anonymous_gets_store_no_session_and_send_no_cookie(federation: Federation) -> None:
    before = _stored_sessions(federation)
    answers = [requests.get(f"{federation.url}{path}", verify=str(throwaway_ca().ca_file), timeout=10,
                            allow_redirects=False) for _ in range(9) for path in ANONYMOUS][:50]

    assert len(answers) == 50
    assert all(a.status_code in (200, 400) for a in answers), {a.url: a.status_code for a in answers}
    assert not [a.url for a in answers if "Set-Cookie" in a.headers]
    assert _stored_sessions(federation) == before == {}


def test_the_signed_out_sign_in_form_is_refused_from_another_origin(federation: Federation,
                                                                     browser: Browser) -> None:
    """The sign-in form carries no CSRF token (it would open a session for every visitor): the origin check
    alone keeps another site from posting it."""
    before = federation.provider.hits("authorize")

    forged = browser.post(f"{federation.url}/account/sign-in", {}, initiator="https://attacker.example/account/")

    assert forged.status_code == 400
    assert federation.provider.hits("authorize") == before and _stored_sessions(federation) == {}
