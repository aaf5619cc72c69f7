"""How often one request asks Redis (issue 21): a browser session in Redis is written only when it changed,
requests that need no session (static files, the theme's stylesheet, health probes) never touch it, the
rate limits of an allowed request cost one round trip per check, with no window read for response headers, and
the upstream's callback looks its login's app up in one round trip.

Against the real Redis of ``BROKER_TEST_REDIS_URL`` (skipped without it), in a logical database of its own
(``REDIS_DB``). Commands are counted on the client side (``tests.web.redis_counting``), so other users of the
same server do not change the figures; ``-s`` prints them per endpoint.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from broker.app import SESSION_COOKIE_HTTPS
from tests.flows.federation import Federation, make_keys, running_federation
from tests.peers.browser import Browser
from tests.web.redis_counting import RedisCalls, counting_redis, forget_counters

REDIS_ENV = "BROKER_TEST_REDIS_URL"
#: this module's own logical database (tests/security/test_attack_session_store.py uses 11)
REDIS_DB = 12

pytestmark = pytest.mark.skipif(not os.environ.get(REDIS_ENV), reason=f"needs {REDIS_ENV}")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_keys(tmp_path_factory.mktemp("keys"))


@contextmanager
def _running(tmp_path: Path, keys: Path, extra_config: str = "") -> Iterator[Federation]:
    parts = urlsplit(os.environ[REDIS_ENV])
    url = urlunsplit((parts.scheme, parts.netloc, f"/{REDIS_DB}", parts.query, parts.fragment))
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"{REDIS_ENV} is set but Redis is unreachable: {exc}", pytrace=False)
    with running_federation(tmp_path / "instance", keys, f"sqlite:///{tmp_path / 'b.db'}", url,
                            extra_config=extra_config) as running:
        forget_counters(url, running.url)
        yield running


@pytest.fixture
def federation(tmp_path: Path, keys: Path) -> Iterator[Federation]:
    with _running(tmp_path, keys) as running:
        yield running


@pytest.fixture
def browser() -> Iterator[Browser]:
    with Browser() as b:
        yield b


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisCalls]:
    with counting_redis(monkeypatch) as counted:
        yield counted


def _signed_in(federation: Federation, browser: Browser) -> None:
    """A SAML app's login through the OpenID provider, up to the page that posts the answer back to the app."""
    _, page = federation.login(browser)
    assert page.status_code == 200 and browser.is_self_submitting(page), page.text[:300]


def _report(title: str, calls: RedisCalls) -> None:
    print(f"\n{title}: {len(calls.trips)} round trips, {sum(len(t.commands) for t in calls.trips)} commands\n"
          + calls.summary())


def test_a_page_with_an_unchanged_session_writes_nothing(federation: Federation, browser: Browser,
                                                          calls: RedisCalls) -> None:
    _signed_in(federation, browser)
    assert browser.get(f"{federation.url}/account/").status_code == 200  # may add what the page keeps
    calls.clear()

    page = browser.get(f"{federation.url}/account/")

    _report("GET /account/ again", calls)
    assert page.status_code == 200 and "Set-Cookie" not in page.headers
    session = calls.of_kind("session")
    assert [t.commands for t in session] == [("GET",)], session  # read once, never written or re-expired


def test_files_and_probes_do_not_open_the_session(federation: Federation, browser: Browser,
                                                  calls: RedisCalls) -> None:
    """The browser sends its session cookie with every file of a page; none of them opens the session."""
    _signed_in(federation, browser)
    page = browser.get(f"{federation.url}/account/")
    stylesheet = re.search(r'href="(/static/theme/[^"]+\.css)"', page.text)
    assert stylesheet, page.text[:500]
    cookie = browser.session.cookies.get(SESSION_COOKIE_HTTPS)
    calls.clear()

    answers = [browser.get(federation.url + path)
               for path in ("/static/broker.css", stylesheet.group(1), "/healthz")]

    _report("static files and /healthz", calls)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert not calls.of_kind("session"), calls.summary()
    assert browser.session.cookies.get(SESSION_COOKIE_HTTPS) == cookie
    assert "Sign out" in browser.get(f"{federation.url}/account/").text  # the session itself is untouched


def test_each_limit_check_of_a_login_is_one_round_trip(federation: Federation, browser: Browser,
                                                       calls: RedisCalls) -> None:
    """The SAML request: the address's limit, then the app's budget (its share for this address and the budget
    itself, together); the provider's callback likewise with the upstream's budget. No TTL or count is read."""
    _signed_in(federation, Browser())  # loads the scripts into Redis
    calls.clear()

    _signed_in(federation, browser)

    _report("a login (SAML app -> OpenID provider)", calls)
    for endpoint in ("saml_idp.sso_redirect", "login.oidc_callback"):
        limits = [t.commands for t in calls.of(endpoint) if t.of_kind("limits")]
        assert limits == [("EVALSHA",), ("EVALSHA",)], (endpoint, limits)
    assert not [t for t in calls.trips if "TTL" in t.commands], calls.summary()


def test_an_allowed_request_has_no_limit_headers_and_a_refusal_says_when_to_retry(tmp_path: Path,
                                                                                  keys: Path) -> None:
    with _running(tmp_path, keys, '\n[limits]\nper_ip = "2/minute"\n') as federation, Browser() as browser:
        _, location = federation.sps["sp1"].redirect_request()
        answers = [browser.get(location, follow=False) for _ in range(3)]

    assert [a.status_code for a in answers] == [302, 302, 429]
    assert not [name for a in answers for name in a.headers if name.lower().startswith("x-ratelimit")]
    assert 0 < int(answers[2].headers["Retry-After"]) <= 60
    assert "Retry-After" not in answers[0].headers


def test_the_callback_looks_for_its_logins_app_in_one_round_trip(federation: Federation, browser: Browser,
                                                                 calls: RedisCalls) -> None:
    """The upstream's callback notes which app its login came from, for the way back on an error page
    (``broker.web.http.way_back.through``): one ``MGET`` over every kind a login may wait in, not one ``GET`` each."""
    _signed_in(federation, browser)

    pending = [t.commands for t in calls.of("login.oidc_callback") if any(":pending:" in key for key in t.keys)]
    print("\npending-state round trips of the callback:", pending)
    assert pending.count(("MGET",)) == 1, pending
    assert ("GET",) not in pending, pending
