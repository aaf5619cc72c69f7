"""Session ids as columns (revision 0016, issue 18): a grant's SSO session (``oidc_grants.sid``), which ending the
session looks up by index, filled by the migration for the grants stored before it; and an SSO session's upstream
OpenID provider session (``sso_sessions.upstream_sid``), which the provider's logout tokens name."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import Engine, inspect, select, update

from broker.core.grants import Grant, TokenKind, new_token
from broker.core.ports import SsoSessionRecord
from broker.storage import SqlGrantStore, create_engine_for, upgrade
from broker.storage.sso_sessions import SqlSsoSessionRegistry
from broker.storage.tables import OidcGrantRow, SsoSessionRow, UTCDateTime

MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)
#: more grants than two batches of the migration's backfill (500 a batch), so that paging is exercised
MANY = 1_100

# The tables as revision 0015 left them (the row classes have the new columns).
_accounts = sa.table("accounts", sa.column("account_id", sa.String()), sa.column("created_at", UTCDateTime()))
_grants = sa.table("oidc_grants", sa.column("grant_id", sa.String()), sa.column("client_id", sa.String()),
                   sa.column("account_id", sa.String()), sa.column("payload", sa.Text()),
                   sa.column("created_at", UTCDateTime()), sa.column("revoked_at", UTCDateTime()))
_sessions = sa.table("sso_sessions", sa.column("sid", sa.String()), sa.column("account_id", sa.String()),
                     sa.column("upstream", sa.String()), sa.column("created_at", UTCDateTime()),
                     sa.column("last_seen", UTCDateTime()), sa.column("expires_at", UTCDateTime()),
                     sa.column("user_agent", sa.String()), sa.column("ended_at", UTCDateTime()))


def grant(grant_id: str, account_id: str, sid: str, now: datetime) -> Grant:
    return Grant(grant_id=grant_id, client_id="city-app", account_id=account_id, scope=("openid",),
                 claims=frozenset(), redirect_uri="https://app.example.org/cb", nonce=None, code_challenge=None,
                 auth_time=now - MINUTE, acr=None, amr=(), sid=sid, upstream="op", created_at=now)


def new_account(engine: Engine, now: datetime) -> str:
    account_id = secrets.token_hex(8)
    with engine.begin() as connection:
        connection.execute(_accounts.insert().values(account_id=account_id, created_at=now))
    return account_id


def column_sids(engine: Engine) -> dict[str, str | None]:
    with engine.connect() as connection:
        return {row.grant_id: row.sid for row in connection.execute(select(OidcGrantRow.grant_id, OidcGrantRow.sid))}


def session(sid: str, account_id: str, now: datetime, upstream: str = "op", upstream_sid: str | None = None,
            lifetime: timedelta = HOUR) -> SsoSessionRecord:
    return SsoSessionRecord(sid, account_id, upstream, now, now, now + lifetime, "Test/1.0", upstream_sid=upstream_sid)


# -- grants: the session id is a column, and ending a session looks it up -------------------------------------


def test_a_stored_grant_carries_its_session_id_in_an_indexed_column(engine: Engine) -> None:
    now = datetime.now(UTC)
    account_id = new_account(engine, now)
    store = SqlGrantStore(engine)
    store.create_grant(grant("g-1", account_id, "sid-A", now))
    store.create_grant(grant("g-2", account_id, "", now))

    assert column_sids(engine) == {"g-1": "sid-A", "g-2": None}
    indexes = {tuple(i["column_names"]) for i in inspect(engine).get_indexes("oidc_grants")}
    assert ("sid",) in indexes


def test_revoke_session_finds_the_grants_by_the_column(engine: Engine) -> None:
    """The column decides, not the payload: a grant whose column was cleared is not found although its JSON still
    names the session; one whose column names the session is."""
    now = datetime.now(UTC)
    account_id = new_account(engine, now)
    store = SqlGrantStore(engine)
    for grant_id in ("g-1", "g-2", "g-3"):
        store.create_grant(grant(grant_id, account_id, "sid-A", now))
    access = new_token()
    store.issue(TokenKind.ACCESS, access, "g-1", now, now + HOUR)
    with engine.begin() as connection:
        connection.execute(update(OidcGrantRow).where(OidcGrantRow.grant_id == "g-3").values(sid=None))

    assert store.revoke_session("sid-A", now) == 2

    assert store.find(TokenKind.ACCESS, access, now) is None
    with engine.connect() as connection:
        live = set(connection.scalars(select(OidcGrantRow.grant_id).where(OidcGrantRow.revoked_at.is_(None))))
    assert live == {"g-3"}


# -- the migration fills the column from the grants' payloads -------------------------------------------------


def test_the_migration_fills_the_session_id_of_the_grants_stored_before_it(database_url: str) -> None:
    now = datetime.now(UTC)
    upgrade(database_url, "0015")
    engine = create_engine_for(database_url)
    try:
        account_id = secrets.token_hex(8)
        odd = {  # payloads whose sid cannot be kept: NULL
            "no-sid": json.dumps({"grant_id": "no-sid"}),
            "empty-sid": json.dumps({"sid": ""}),
            "number-sid": json.dumps({"sid": 7}),
            "long-sid": json.dumps({"sid": "x" * 65}),
            "not-json": "{not json",
            "not-an-object": "[1, 2]",
        }
        rows = [{"grant_id": f"g-{i:05d}", "payload": grant(f"g-{i:05d}", account_id, f"sid-{i % 7}", now).to_json()}
                for i in range(MANY)]
        rows.append({"grant_id": "like-chars", "payload": grant("like-chars", account_id, 's_%"\\1', now).to_json()})
        rows += [{"grant_id": grant_id, "payload": payload} for grant_id, payload in odd.items()]
        with engine.begin() as connection:
            connection.execute(_accounts.insert().values(account_id=account_id, created_at=now))
            connection.execute(_grants.insert(), [{**row, "client_id": "city-app", "account_id": account_id,
                                                   "created_at": now, "revoked_at": None} for row in rows])
            connection.execute(_sessions.insert().values(sid="before", account_id=account_id, upstream="op",
                                                         created_at=now, last_seen=now, expires_at=now + HOUR,
                                                         user_agent="Old/1.0", ended_at=None))

        upgrade(database_url, "0016")

        sids = column_sids(engine)
        assert len(sids) == MANY + 1 + len(odd)
        assert all(sids[f"g-{i:05d}"] == f"sid-{i % 7}" for i in range(MANY)), "every batch was filled"
        assert sids["like-chars"] == 's_%"\\1'
        assert {grant_id: sids[grant_id] for grant_id in odd} == dict.fromkeys(odd)
        with engine.connect() as connection:
            assert connection.scalar(select(SsoSessionRow.upstream_sid).where(SsoSessionRow.sid == "before")) is None
        assert SqlGrantStore(engine).revoke_session("sid-3", now) == len(range(3, MANY, 7))
        assert SqlGrantStore(engine).revoke_session('s_%"\\1', now) == 1
    finally:
        engine.dispose()


# -- SSO sessions: the upstream provider's session id -------------------------------------------------------


def test_sessions_are_found_by_their_upstream_session_id_while_live(engine: Engine) -> None:
    now = datetime.now(UTC)
    account_id, other_account = new_account(engine, now), new_account(engine, now)
    registry = SqlSsoSessionRegistry(engine)
    registry.register(session("a", account_id, now - MINUTE, upstream_sid="op-1"))
    registry.register(session("b", other_account, now, upstream_sid="op-1"))  # a provider that reuses its sids
    registry.register(session("other-op-sid", account_id, now, upstream_sid="op-2"))
    registry.register(session("other-upstream", account_id, now, upstream="idp", upstream_sid="op-1"))
    registry.register(session("no-op-sid", account_id, now))
    registry.register(session("ended", account_id, now, upstream_sid="op-1"))
    registry.end("ended", now)
    registry.register(session("expired", account_id, now - 2 * HOUR, upstream_sid="op-1"))

    found = registry.by_upstream_sid("op", "op-1", now)

    assert [(r.sid, r.account_id, r.upstream_sid) for r in found] == [("a", account_id, "op-1"),
                                                                      ("b", other_account, "op-1")]
    assert {r.sid: r.upstream_sid for r in registry.active(account_id, now)} == {
        "a": "op-1", "other-op-sid": "op-2", "other-upstream": "op-1", "no-op-sid": None}
    assert registry.by_upstream_sid("op", "op-3", now) == []


def test_a_sid_that_is_never_recorded_finds_nothing_without_asking_the_database(engine: Engine) -> None:
    """PostgreSQL refuses a NUL in text; such a sid, or one longer than the column, is never recorded anyway."""
    now = datetime.now(UTC)
    registry = SqlSsoSessionRegistry(engine)
    registry.register(session("a", new_account(engine, now), now, upstream_sid="op-1"))

    assert registry.by_upstream_sid("op", "op-1\x00", now) == []
    assert registry.by_upstream_sid("op", "x" * 256, now) == []
    assert registry.by_upstream_sid("op", "", now) == []
