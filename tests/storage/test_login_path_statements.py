"""The login path's store calls whose statements are built once (issue 21): what each sends to the database, and
the behaviour that a statement built with bind parameters could silently change (a browser without a device
cookie, an unknown SSO session, the grant a redeemed token returns), on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from broker.core.grants import Grant, Redemption, TokenKind, new_token
from broker.core.model import Protocol, UpstreamIdentity
from broker.core.ports import SsoSessionRecord
from broker.core.risk import LoginSignals, login_place
from broker.core.sessions import Participant
from broker.storage import SqlAccountStore, SqlGrantStore, SqlLoginHistory
from broker.storage.sealing import Sealer
from broker.storage.sso_sessions import SqlSsoSessionRegistry
from broker.storage.tables import SsoParticipantRow

SEALER = Sealer([secrets.token_bytes(32)])
#: the tests' own clock: now, to the minute (no test depends on a date)
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
KEY = secrets.token_bytes(32)
WINDOW = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL ``engine`` sends while the block runs (SQLAlchemy's ``before_cursor_execute``), first word each."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        sent.append(sql.split(None, 1)[0].upper())

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def account(engine: Engine, make_identity: Callable[..., UpstreamIdentity]) -> str:
    return SqlAccountStore(engine, SEALER).create_with_identity(make_identity(), NOW)[0].account_id


# -- the login history --------------------------------------------------------------------------------------------

def test_a_device_is_known_only_as_itself_and_no_device_never_is(
    engine: Engine, account: str, make_identity: Callable[..., UpstreamIdentity],
) -> None:
    """``:device`` is bound as NULL for a browser without a device cookie: ``device = NULL`` is never true, so the
    stored "" of earlier bare logins does not make it a known device; a device id is known after its own login
    only, and only for its own account."""
    history = SqlLoginHistory(engine)
    laptop, phone = login_place("198.51.100.20", "laptop", KEY), login_place("198.51.100.20", "phone", KEY)
    bare = login_place("198.51.100.20", "", KEY)
    other = SqlAccountStore(engine, SEALER).create_with_identity(make_identity(subject="s-2"), NOW)[0].account_id
    history.record(account, bare, NOW - timedelta(days=2))
    history.record(other, phone, NOW - timedelta(days=2))

    assert history.signals(account, bare, NOW, WINDOW).new_device
    assert history.signals(account, laptop, NOW, WINDOW).new_device
    history.record(account, laptop, NOW - timedelta(days=1))
    assert not history.signals(account, laptop, NOW, WINDOW).new_device
    assert history.signals(account, bare, NOW, WINDOW).new_device
    assert history.signals(account, phone, NOW, WINDOW).new_device, "another account's device"
    assert history.signals(account, bare, NOW, WINDOW) == LoginSignals(new_device=True)


def test_signals_and_record_send_one_statement_each(engine: Engine, account: str) -> None:
    history = SqlLoginHistory(engine, purge_every=1000)
    place = login_place("198.51.100.20", "laptop", KEY)
    with statements(engine) as read:
        history.signals(account, place, NOW, WINDOW)
    with statements(engine) as written:
        history.record(account, place, NOW)
    assert (read, written) == (["SELECT"], ["INSERT"])


# -- the SSO session's participants -------------------------------------------------------------------------------

def _sso_session(engine: Engine, account: str, sid: str) -> SqlSsoSessionRegistry:
    registry = SqlSsoSessionRegistry(engine)
    registry.register(SsoSessionRecord(sid, account, "example-idp", NOW, NOW, NOW + timedelta(hours=8), "agent"))
    return registry


def _positions(engine: Engine) -> dict[tuple[str, str], int]:
    row = SsoParticipantRow
    with engine.connect() as connection:
        return {(sid, party): position
                for sid, party, position in connection.execute(select(row.sid, row.party_id, row.position))}


def test_join_ignores_an_unknown_sid_even_when_other_sessions_exist(engine: Engine, account: str) -> None:
    registry = _sso_session(engine, account, "sid-1")
    registry.join("sid-1", Participant("app-1", Protocol.OIDC, "sub-1"), NOW)

    registry.join("sid-unknown", Participant("app-1", Protocol.OIDC, "sub-1"), NOW)

    assert registry.participants("sid-unknown") == []
    assert _positions(engine) == {("sid-1", "app-1"): 1}


def test_a_second_join_updates_its_row_and_positions_count_per_session(engine: Engine, account: str) -> None:
    registry = _sso_session(engine, account, "sid-1")
    _sso_session(engine, account, "sid-2")
    registry.join("sid-1", Participant("app-1", Protocol.SAML, "_n1", TRANSIENT), NOW)
    registry.join("sid-1", Participant("app-2", Protocol.OIDC, "sub-2"), NOW)
    registry.join("sid-2", Participant("app-2", Protocol.OIDC, "sub-2"), NOW)

    with statements(engine) as sent:
        registry.join("sid-1", Participant("app-1", Protocol.OIDC, "sub-9"), NOW + MINUTE)

    assert sent == ["INSERT"]
    assert registry.participants("sid-1") == [Participant("app-1", Protocol.OIDC, "sub-9", None),
                                              Participant("app-2", Protocol.OIDC, "sub-2")]
    assert _positions(engine) == {("sid-1", "app-1"): 1, ("sid-1", "app-2"): 2, ("sid-2", "app-2"): 1}
    row = SsoParticipantRow
    with engine.connect() as connection:
        times = connection.execute(select(row.joined_at, row.last_seen)
                                   .where(row.sid == "sid-1", row.party_id == "app-1")).one()
    assert tuple(times) == (NOW, NOW + MINUTE)


# -- redeeming a code or a refresh token --------------------------------------------------------------------------

@pytest.fixture
def grants(engine: Engine) -> SqlGrantStore:
    return SqlGrantStore(engine, SEALER)


def _grant(grants: SqlGrantStore, account: str, grant_id: str) -> Grant:
    grant = Grant(grant_id=grant_id, client_id="city-app", account_id=account, scope=("openid",),
                  claims=frozenset({"email"}), redirect_uri="https://app.example.org/cb", nonce=None,
                  code_challenge=None, auth_time=NOW, acr=None, amr=("pwd",), sid="sid-1", upstream="example-idp",
                  created_at=NOW, released={"email": f"{grant_id}@example.org"})
    grants.create_grant(grant)
    return grant


def _issue(grants: SqlGrantStore, kind: TokenKind, grant: Grant, lifetime: timedelta = 10 * MINUTE) -> str:
    token = new_token()
    grants.issue(kind, token, grant.grant_id, NOW, NOW + lifetime)
    return token


def test_a_redemption_sends_one_statement_and_returns_its_own_grant(engine: Engine, grants: SqlGrantStore,
                                                                     account: str) -> None:
    """The grant comes from the UPDATE's RETURNING: each token's own, whichever grants were stored before it."""
    issued = [(grant, _issue(grants, TokenKind.CODE, grant))
              for grant in (_grant(grants, account, f"grant-{n}") for n in range(3))]

    for grant, code in reversed(issued):
        with statements(engine) as sent:
            assert grants.redeem(TokenKind.CODE, code, NOW) == (Redemption.OK, grant)
        assert sent == ["UPDATE"]
        with statements(engine) as sent:
            assert grants.redeem(TokenKind.CODE, code, NOW) == (Redemption.REUSED, grant)
        assert sent == ["UPDATE", "SELECT"]


def test_redemption_outcomes_after_expiry_and_revocation(grants: SqlGrantStore, account: str) -> None:
    grant, revoked = _grant(grants, account, "grant-1"), _grant(grants, account, "grant-2")
    expiring = _issue(grants, TokenKind.REFRESH, grant, lifetime=MINUTE)
    used, unused = _issue(grants, TokenKind.REFRESH, revoked), _issue(grants, TokenKind.REFRESH, revoked)
    assert grants.redeem(TokenKind.REFRESH, used, NOW) == (Redemption.OK, revoked)
    grants.revoke_grant(revoked.grant_id, NOW)

    assert grants.redeem(TokenKind.REFRESH, expiring, NOW + MINUTE) == (Redemption.INVALID, None)
    assert grants.redeem(TokenKind.REFRESH, unused, NOW) == (Redemption.INVALID, None)
    assert grants.redeem(TokenKind.REFRESH, used, NOW + MINUTE) == (Redemption.REUSED, revoked)
    assert grants.redeem(TokenKind.CODE, used, NOW) == (Redemption.INVALID, None), "only as its own kind"
    assert grants.redeem(TokenKind.REFRESH, expiring, NOW) == (Redemption.OK, grant), "none of these consumed it"
