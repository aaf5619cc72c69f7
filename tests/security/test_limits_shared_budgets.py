"""Issue 15, points 3 and 4: one client address cannot exhaust a shared budget (an app's sign-ins, an
upstream's callbacks, a client's back channel), the back channel is limited per address and per client, and
failures anyone can cause reach the audit log bounded and aggregated, without the caller's text.

Requests come through the app's test client with a chosen ``REMOTE_ADDR`` (no proxy is trusted, so that is
the client address). Counters in memory, and in Redis (``BROKER_TEST_REDIS_URL``, its logical database
``REDIS_DB``), where several counters of one check go in one round trip (``broker.web.ops.limit_counters``).
Limits are per hour and their windows start at the first request, so a test never straddles one; every loop
has a fixed count and asserts, never waits for a 429.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from broker.storage import create_engine_for
from broker.storage.tables import AuditEventRow
from tests.flows.federation import Federation, make_keys, running_federation
from tests.peers.browser import Browser
from tests.security.oidc_provider_support import Client, authorize_url, client, tokens
from tests.web.redis_counting import forget_counters

A, B, C = "192.0.2.1", "192.0.2.2", "192.0.2.3"
QUIET = 'per_ip = "1000/hour"\nper_ip_api = "1000/hour"\nfailed_client_auth = "1000/hour"\n'
REDIS_ENV = "BROKER_TEST_REDIS_URL"
#: the logical Redis database of these tests' counters
REDIS_DB = 13


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(params=["memory", *(["redis"] if os.environ.get(REDIS_ENV) else [])])
def counters(request: pytest.FixtureRequest) -> str:
    """The counters' store: ``storage_url`` of ``[limits]`` (browser sessions stay in the database)."""
    if request.param == "memory":
        return "memory://"
    url = os.environ[REDIS_ENV].rsplit("/", 1)[0] + f"/{REDIS_DB}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"{REDIS_ENV} is set but Redis is unreachable: {exc}", pytrace=False)
    return url


def _federation(tmp_path: Path, keys: Path, limits: str, counters: str) -> Iterator[Federation]:
    with running_federation(tmp_path / "instance", keys, f"sqlite:///{tmp_path / 'b.db'}",
                            extra_config=f'\n[limits]\naudit_window_seconds = 3600\nstorage_url = "{counters}"\n'
                            + limits) as running:
        if counters.startswith("redis"):
            forget_counters(counters, running.url)  # of an earlier test's broker on the same port
        yield running


def _get(federation: Federation, path: str, address: str) -> TestResponse:
    test: FlaskClient = federation.app.test_client()
    return test.get(path, base_url=federation.url, environ_base={"REMOTE_ADDR": address})


def _post(federation: Federation, path: str, address: str, form: Mapping[str, str],
          auth: tuple[str, str] | None = None) -> TestResponse:
    headers = {"Authorization": "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()} if auth else {}
    test: FlaskClient = federation.app.test_client()
    return test.post(path, base_url=federation.url, environ_base={"REMOTE_ADDR": address}, data=dict(form),
                     headers=headers)


def _authorize(federation: Federation, c: Client, address: str) -> int:
    return _get(federation, authorize_url(federation, c).removeprefix(federation.url), address).status_code


def _assert_json_429(answer: TestResponse) -> None:
    assert answer.status_code == 429, answer.get_data(as_text=True)
    assert int(answer.headers["Retry-After"]) > 0
    assert answer.get_json()["error"] == "temporarily_unavailable"


def _audit(federation: Federation) -> list[tuple[str, str | None, str | None]]:
    engine = create_engine_for(federation.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(AuditEventRow).order_by(AuditEventRow.id)).all()
    finally:
        engine.dispose()
    return [(r.kind, r.downstream, r.reason) for r in rows]


# -- point 3: sign-in entry points ---------------------------------------------------------------------------
def test_one_address_hammering_authorize_does_not_lock_others_out(tmp_path: Path, keys: Path, counters: str) -> None:
    """Refused by its per-address limit, an address spends nothing of the app's budget: B still gets in."""
    for federation in _federation(tmp_path, keys, 'per_ip = "5/hour"\nper_downstream = "6/hour"\n'
                                                  'address_share = 1\n', counters):
        c = client(federation)
        codes = [_authorize(federation, c, A) for _ in range(9)]
        assert 429 not in codes[:5] and codes[5:] == [429] * 4, codes
        assert _authorize(federation, c, B) != 429  # the sixth request the app's budget allows
        assert _authorize(federation, c, C) == 429  # and now the budget is spent


def test_one_address_spends_only_its_share_of_an_apps_budget(tmp_path: Path, keys: Path, counters: str) -> None:
    for federation in _federation(tmp_path, keys, 'per_ip = "1000/hour"\nper_downstream = "8/hour"\n'
                                                  'address_share = 4\n', counters):
        c = client(federation)
        codes = [_authorize(federation, c, A) for _ in range(4)]
        assert 429 not in codes[:2] and codes[2:] == [429, 429], codes  # 8 / 4 = 2 each
        assert [_authorize(federation, c, B) for _ in range(2)].count(429) == 0


def test_refused_callbacks_do_not_spend_the_upstreams_budget(tmp_path: Path, keys: Path, counters: str) -> None:
    for federation in _federation(tmp_path, keys, 'per_ip = "2/hour"\nper_upstream = "3/hour"\n'
                                                  'address_share = 1\n', counters):
        path = "/upstream/oidc/op/callback?state=x&code=y"
        assert [_get(federation, path, A).status_code for _ in range(4)] == [400, 400, 429, 429]
        assert _get(federation, path, B).status_code == 400  # refused as unknown state, but not limited
        assert _get(federation, path, C).status_code == 429


# -- point 4: the back channel -------------------------------------------------------------------------------
def test_back_channel_endpoints_are_limited_per_address(tmp_path: Path, keys: Path, counters: str) -> None:
    for federation in _federation(tmp_path, keys, 'per_ip_api = "3/hour"\nfailed_client_auth = "1000/hour"\n',
                                  counters):
        for path in ("/oidc/token", "/oidc/revoke", "/oidc/introspect", "/oidc/userinfo", "/ssf/verify",
                     "/upstream/op/backchannel-logout"):
            answers = [_post(federation, path, A, {"client_id": "nobody", "token": "t"}) for _ in range(4)]
            assert [a.status_code for a in answers[:3]].count(429) == 0, path
            _assert_json_429(answers[3])
            assert _post(federation, path, B, {"client_id": "nobody", "token": "t"}).status_code != 429, path


def test_made_up_client_ids_are_limited_and_audited_in_aggregate(tmp_path: Path, keys: Path, counters: str) -> None:
    """200 token requests with random client ids: 10 refused as invalid_client, then 429; two audit rows in
    all, neither holding any of the ids."""
    for federation in _federation(tmp_path, keys, 'per_ip_api = "1000/hour"\nfailed_client_auth = "10/hour"\n',
                                  counters):
        before = len(_audit(federation))
        ids = [f"made-up-{secrets.token_hex(8)}" for _ in range(200)]
        answers = [_post(federation, "/oidc/token", A, {"grant_type": "authorization_code", "code": "c",
                                                         "client_id": made_up, "client_secret": "s"})
                   for made_up in ids]
        assert [a.status_code for a in answers[:10]] == [401] * 10
        for answer in answers[10:]:
            _assert_json_429(answer)
        events = _audit(federation)[before:]
        assert events == [("client-auth-failed", None, "oidc_api.token: unknown client"),
                          ("rate-limited", None, "oidc_api.token")]
        assert not any(made_up in str(events) for made_up in ids)


def test_failed_client_authentication_is_limited_per_client_and_address(tmp_path: Path, keys: Path,
                                                                        counters: str) -> None:
    """Three wrong secrets from A: A is refused even with the right one (before its secret is checked), B is
    not; the failures are one audit record of the registered client."""
    for federation in _federation(tmp_path, keys, 'per_ip_api = "1000/hour"\nfailed_client_auth = "3/hour"\n',
                                  counters):
        c = client(federation)
        assert c.secret is not None
        before = len(_audit(federation))
        wrong = [_post(federation, "/oidc/revoke", A, {"token": "t"}, (c.client_id, "wrong")) for _ in range(3)]
        assert [w.status_code for w in wrong] == [401] * 3
        _assert_json_429(_post(federation, "/oidc/revoke", A, {"token": "t"}, (c.client_id, c.secret)))
        assert _post(federation, "/oidc/revoke", B, {"token": "t"}, (c.client_id, c.secret)).status_code == 200
        assert _audit(federation)[before:] == [
            ("client-auth-failed", c.client_id, "oidc_api.revoke: client authentication failed"),
            ("rate-limited", None, "oidc_api.revoke")]


def test_only_a_clients_own_successes_spend_its_budget(tmp_path: Path, keys: Path, counters: str) -> None:
    for federation in _federation(tmp_path, keys, 'per_ip_api = "1000/hour"\nfailed_client_auth = "1000/hour"\n'
                                                  'per_client = "3/hour"\n', counters):
        c = client(federation)
        assert c.secret is not None
        failures = [_post(federation, "/oidc/revoke", C, {"token": "t"}, (c.client_id, "wrong")) for _ in range(5)]
        assert [f.status_code for f in failures] == [401] * 5  # spend nothing of the client's budget
        ok = [_post(federation, "/oidc/revoke", A, {"token": "t"}, (c.client_id, c.secret)) for _ in range(3)]
        assert [o.status_code for o in ok] == [200] * 3
        _assert_json_429(_post(federation, "/oidc/revoke", B, {"token": "t"}, (c.client_id, c.secret)))


def test_userinfo_spends_the_budget_of_the_tokens_client(tmp_path: Path, keys: Path, counters: str) -> None:
    """UserInfo answers a client's access token within that client's ``per_client`` budget, whoever sends it;
    made-up tokens spend nothing of it (only holders of the client's tokens can)."""
    for federation in _federation(tmp_path, keys, QUIET + 'per_client = "3/hour"\n', counters):
        c = client(federation)
        with Browser() as browser:
            access_token = tokens(browser, federation, c)["access_token"]  # the code redemption spends one
        bogus = [_get_bearer(federation, "/oidc/userinfo", A, secrets.token_urlsafe(32)) for _ in range(5)]
        assert [b.status_code for b in bogus] == [401] * 5
        answered = [_get_bearer(federation, "/oidc/userinfo", A, access_token) for _ in range(2)]
        assert [a.status_code for a in answered] == [200] * 2
        _assert_json_429(_get_bearer(federation, "/oidc/userinfo", B, access_token))


def _get_bearer(federation: Federation, path: str, address: str, token: str) -> TestResponse:
    test: FlaskClient = federation.app.test_client()
    return test.get(path, base_url=federation.url, environ_base={"REMOTE_ADDR": address},
                    headers={"Authorization": f"Bearer {token}"})
