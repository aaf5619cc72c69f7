"""``SqlGrantStore.create_grant`` in SQLAlchemy Core (issue 21): the grant row, then its tokens, in one transaction,
also inside a login step where the account row is written in the same transaction."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from broker.core.grants import Grant, NewToken, Redemption, TokenKind, new_token
from broker.core.model import UpstreamIdentity
from broker.storage import SqlAccountStore, SqlGrantStore
from broker.storage.sealing import Sealer
from broker.storage.tables import OidcGrantRow, OidcTokenRow
from broker.storage.unit_of_work import SqlUnitOfWork

SEALER = Sealer([secrets.token_bytes(32)])
MINUTE = timedelta(minutes=1)

Identity = Callable[..., UpstreamIdentity]


def grant(account_id: str, now: datetime, grant_id: str = "grant-1") -> Grant:
    return Grant(grant_id=grant_id, client_id="city-app", account_id=account_id, scope=("openid", "email"),
                 claims=frozenset({"email"}), redirect_uri="https://app.example.org/cb", nonce="n-1",
                 code_challenge=None, auth_time=now - MINUTE, acr=None, amr=("pwd",), sid="sid-1",
                 upstream="example-idp", created_at=now, released={"email": "anna@example.org"})


def count(engine: Engine, row: type[OidcGrantRow] | type[OidcTokenRow]) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(row)).scalar_one())


def test_a_grant_and_its_tokens_are_stored_together_released_values_sealed(engine: Engine,
                                                                           make_identity: Identity) -> None:
    now = datetime.now(UTC)
    account, _ = SqlAccountStore(engine, SEALER).create_with_identity(make_identity(), now)
    store = SqlGrantStore(engine, SEALER)
    code, refresh = new_token(), new_token()
    stored = grant(account.account_id, now)

    store.create_grant(stored, NewToken(TokenKind.CODE, code, now, now + MINUTE),
                       NewToken(TokenKind.REFRESH, refresh, now, now + 60 * MINUTE))

    redemption, found = store.redeem(TokenKind.CODE, code, now)
    assert (redemption, found) == (Redemption.OK, stored)
    assert found is not None and found.released == {"email": "anna@example.org"}
    record = store.find(TokenKind.REFRESH, refresh, now)
    assert record is not None and (record.grant, record.expires_at) == (stored, now + 60 * MINUTE)
    with engine.connect() as connection:
        payload = connection.execute(select(OidcGrantRow.payload)).scalar_one()
    assert "anna@example.org" not in payload


def test_a_token_that_fails_leaves_no_grant(engine: Engine, make_identity: Identity) -> None:
    now = datetime.now(UTC)
    account, _ = SqlAccountStore(engine, SEALER).create_with_identity(make_identity(), now)
    store = SqlGrantStore(engine, SEALER)
    taken = new_token()
    store.create_grant(grant(account.account_id, now, "first"), NewToken(TokenKind.CODE, taken, now, now + MINUTE))

    with pytest.raises(IntegrityError):  # the same token hash twice
        store.create_grant(grant(account.account_id, now, "second"),
                           NewToken(TokenKind.CODE, new_token(), now, now + MINUTE),
                           NewToken(TokenKind.CODE, taken, now, now + MINUTE))
    with pytest.raises(IntegrityError):  # no such account
        store.create_grant(grant("no-such-account", now, "third"))

    assert (count(engine, OidcGrantRow), count(engine, OidcTokenRow)) == (1, 1)


def test_in_a_step_the_grant_follows_the_account_written_in_it(engine: Engine, make_identity: Identity) -> None:
    """The Core inserts are sent at once; the account's row, written earlier in the same step, is in the
    database before them (the foreign key holds)."""
    now = datetime.now(UTC)
    store = SqlGrantStore(engine, SEALER)
    code = new_token()
    with SqlUnitOfWork(engine)():
        account, _ = SqlAccountStore(engine, SEALER).create_with_identity(make_identity(), now)
        store.create_grant(grant(account.account_id, now), NewToken(TokenKind.CODE, code, now, now + MINUTE))
        assert store.find(TokenKind.CODE, code, now) is not None

    assert store.redeem(TokenKind.CODE, code, now)[0] is Redemption.OK
