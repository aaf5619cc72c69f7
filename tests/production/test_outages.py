"""PostgreSQL or Redis goes away while the broker runs: 503 in the caller's form, then recovery by itself.

The service is reached through a ``TcpProxy`` the test cuts (``close``: every connection reset, new ones
refused) and restores (``open``); the real PostgreSQL and Redis are never touched. Skipped unless
``BROKER_TEST_DATABASE_URL`` / ``BROKER_TEST_REDIS_URL`` are set (they are in CI).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import lxml.html  # type: ignore[import-untyped]
import pytest
import requests

from broker.storage.redis_pending import RedisPendingStore
from tests.databases import POSTGRES_ENV, postgres_schema
from tests.flows.federation import Federation, running_federation, saml_status
from tests.flows.oidc_peers import register_client
from tests.peers.browser import Browser
from tests.production.conftest import REDIS_ENV, needs_postgres, needs_redis, proxy_for, through
from tests.production.tcp_proxy import TcpProxy

RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
CLIENT_REDIRECT = "http://127.0.0.1:9/app/callback"
#: seconds within which a request meeting an outage is answered (no retries with sleeps, no hanging)
FAST = 3.0


def _reference(page: requests.Response) -> str:
    found = lxml.html.document_fromstring(page.text).xpath("//*[@class='reference']/text()")
    assert found, page.text
    return str(found[0])


def _signed_in(federation: Federation, browser: Browser) -> str:
    """A whole SAML login at sp1; the NameID the SP received (derived from the account)."""
    request_id, page = federation.login(browser)
    assert page.status_code == 200, page.text
    response = federation.sps["sp1"].parse(browser.form_fields(page)["SAMLResponse"], request_id)
    assert response is not None
    return str(response.get_subject().text)


def _outage_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "outage:" in r.getMessage()]


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    noisy = [r for r in caplog.records if r.exc_info and r.name.startswith(("broker", "flask", "werkzeug"))]
    assert not noisy, [r.getMessage() for r in noisy]


def _token_request(federation: Federation, client_id: str, secret: str) -> requests.Response:
    return requests.post(f"{federation.url}/oidc/token", auth=(client_id, secret), timeout=10, data={
        "grant_type": "authorization_code", "code": "not-a-code", "redirect_uri": CLIENT_REDIRECT})


def _authorization_request(browser: Browser, federation: Federation) -> requests.Response:
    return browser.get(f"{federation.url}/oidc/authorize", follow=False, params={
        "client_id": "city-app", "redirect_uri": CLIENT_REDIRECT, "response_type": "code", "scope": "openid",
        "state": "st-1", "nonce": "n-1", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256"})


@pytest.fixture(params=["sqlalchemy", "redis"])
def database_outage(request: pytest.FixtureRequest, tmp_path: Path, key_folder: Path,
                    postgres_url: str) -> Iterator[tuple[Federation, TcpProxy]]:
    """The federation on PostgreSQL behind a proxy; browser sessions in the same database or in Redis (direct)."""
    if request.param == "redis" and not os.environ.get(REDIS_ENV):
        pytest.skip(f"needs {REDIS_ENV}")
    redis_url = os.environ[REDIS_ENV] if request.param == "redis" else None
    with proxy_for(postgres_url, 5432) as proxy, \
            running_federation(tmp_path / "instance", key_folder, through(proxy, postgres_url), redis_url) as fed:
        yield fed, proxy


@needs_postgres
def test_database_outage_is_503_and_the_broker_recovers(database_outage: tuple[Federation, TcpProxy],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    federation, proxy = database_outage
    secret = register_client(federation, "city-app", [CLIENT_REDIRECT])
    assert secret is not None
    with Browser() as earlier:
        subject = _signed_in(federation, earlier)  # committed before the outage
    assert federation.accounts() == 1

    with Browser() as browser:
        # The login starts while the database is up; the database goes away before the next step.
        _, location = federation.sps["sp1"].redirect_request()
        first = browser.get(location, follow=False)
        assert first.status_code in (302, 303), first.text
        proxy.close()
        caplog.clear()
        with caplog.at_level(logging.INFO):
            started = time.monotonic()
            page = browser.get(urljoin(first.url, first.headers["Location"]))
            assert page.status_code == 503, page.text
            assert time.monotonic() - started < FAST, "an outage must fail fast, not hang"
            assert "temporarily unavailable" in page.text
            reference = _reference(page)
            assert int(page.headers["Retry-After"]) > 0  # ours, or the rate limiter's window on sign-in views

            # A program calling the token endpoint reads JSON (RFC 6749 §5.2 form).
            token = _token_request(federation, "city-app", secret)
            assert token.status_code == 503
            assert token.json()["error"] == "temporarily_unavailable"

            _, again = federation.sps["sp1"].redirect_request()
            if isinstance(federation.app.extensions["broker"].pending, RedisPendingStore):
                # Logins in progress live in Redis: a new request goes upstream without the database, and the
                # outage shows where the account store is needed, at the callback: the same 503 page.
                for request_url in (again, _authorization_request(browser, federation).headers["Location"]):
                    answer = browser.get(urljoin(federation.url, request_url))
                    assert answer.status_code == 503 and "temporarily unavailable" in answer.text, answer.text
            else:
                # A new SAML request from a known SP is answered in SAML: a Responder status.
                answer = browser.get(again)
                assert browser.is_self_submitting(answer), answer.text
                assert saml_status(browser.form_fields(answer))[0] == RESPONDER

                # An authorization request of a registered client goes back to its redirect URI.
                authorization = _authorization_request(browser, federation)
                assert authorization.status_code in (302, 303), authorization.text
                sent_back = urlsplit(authorization.headers["Location"])
                assert f"{sent_back.scheme}://{sent_back.netloc}{sent_back.path}" == CLIENT_REDIRECT
                query = parse_qs(sent_back.query)
                assert query["error"] == ["temporarily_unavailable"] and query["state"] == ["st-1"]

        lines = _outage_lines(caplog)
        assert len(lines) == 4, [r.getMessage() for r in lines]  # one line per request
        assert reference in lines[0].getMessage() and "database unreachable" in lines[0].getMessage()
        _no_tracebacks(caplog)

        # The database comes back: the same browser signs in, the app was not restarted.
        proxy.open()
        assert _signed_in(federation, browser) == subject
    assert federation.accounts() == 1  # the account made before the outage was found, not made again
    assert _token_request(federation, "city-app", secret).json()["error"] == "invalid_grant"


@pytest.fixture
def redis_outage(tmp_path: Path, key_folder: Path, redis_url: str) -> Iterator[tuple[Federation, TcpProxy]]:
    """The federation with browser sessions and rate limits in Redis behind a proxy; accounts in PostgreSQL when
    configured, else SQLite."""
    database = postgres_schema(os.environ[POSTGRES_ENV]) if os.environ.get(POSTGRES_ENV) else iter(
        [f"sqlite:///{tmp_path / 'broker.db'}"])
    try:
        with proxy_for(redis_url, 6379) as proxy, \
                running_federation(tmp_path / "instance", key_folder, next(database), through(proxy, redis_url)) as fed:
            yield fed, proxy
    finally:
        for _ in database:
            pass


@needs_redis
def test_redis_outage_is_503_and_the_broker_recovers(redis_outage: tuple[Federation, TcpProxy],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    federation, proxy = redis_outage
    secret = register_client(federation, "city-app", [CLIENT_REDIRECT])
    assert secret is not None
    with Browser() as earlier:
        subject = _signed_in(federation, earlier)
    assert federation.accounts() == 1

    with Browser() as browser:
        _, location = federation.sps["sp1"].redirect_request()
        first = browser.get(location, follow=False)
        assert first.status_code in (302, 303), first.text
        proxy.close()
        caplog.clear()
        with caplog.at_level(logging.INFO):
            started = time.monotonic()
            page = browser.get(urljoin(first.url, first.headers["Location"]))  # its session cannot be read
            assert page.status_code == 503, page.text
            assert time.monotonic() - started < FAST, "an outage must fail fast, not hang"
            reference = _reference(page)

            # A new SAML request (rate limits live in Redis too) is answered in SAML.
            _, again = federation.sps["sp1"].redirect_request()
            answer = browser.get(again)
            assert browser.is_self_submitting(answer), answer.text
            assert saml_status(browser.form_fields(answer))[0] == RESPONDER

            # The token endpoint needs no Redis: it keeps answering (here: an unknown code).
            token = _token_request(federation, "city-app", secret)
            assert token.status_code == 400 and token.json()["error"] == "invalid_grant"

        lines = _outage_lines(caplog)
        assert len(lines) == 2, [r.getMessage() for r in lines]
        assert reference in lines[0].getMessage() and "redis unreachable" in lines[0].getMessage()
        _no_tracebacks(caplog)

        proxy.open()
        assert _signed_in(federation, browser) == subject
    assert federation.accounts() == 1
