"""``Grant.released`` at rest (issue 21): the claim values a sign-in released travel with its grant, sealed like
the claims of linked identities (``broker.storage.sealing``), bound to the grant; a value that does not open, or is
not sealed, reads as not kept (the provider then reads the unified profile). The grant is stored with its code in
one transaction."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from broker.core.claims import ClaimValue
from broker.core.grants import Grant, NewToken, Redemption, TokenKind, new_token
from broker.core.model import UpstreamIdentity
from broker.storage import SqlAccountStore, SqlGrantStore
from broker.storage.sealing import Sealer
from broker.storage.tables import OidcGrantRow, OidcTokenRow

SEALER = Sealer([secrets.token_bytes(32)])
NOW = datetime.now(UTC).replace(microsecond=0)
HOUR = timedelta(hours=1)
RELEASED: dict[str, ClaimValue] = {"email": "anna@example.org", "email_verified": True, "given_name": "Anna",
                                   "roles": ("clerk",), "address": {"locality": "Tampere"}}


@pytest.fixture
def grant(engine: Engine, make_identity: Callable[..., UpstreamIdentity]) -> Grant:
    account, _ = SqlAccountStore(engine, SEALER).create_with_identity(make_identity(), NOW)
    return Grant(grant_id="grant-1", client_id="city-app", account_id=account.account_id,
                 scope=("openid", "email", "profile"), claims=frozenset(RELEASED), redirect_uri="https://a.example/cb",
                 nonce=None, code_challenge=None, auth_time=NOW, acr=None, amr=(), sid="sid-1", upstream="op",
                 created_at=NOW, released=RELEASED)


def _stored(engine: Engine, grant_id: str) -> str:
    with engine.connect() as connection:
        return str(connection.scalar(select(OidcGrantRow.payload).where(OidcGrantRow.grant_id == grant_id)))


def _code(store: SqlGrantStore, grant: Grant) -> str:
    store.create_grant(grant)
    code = new_token()
    store.issue(TokenKind.CODE, code, grant.grant_id, NOW, NOW + HOUR)
    return code


def test_released_values_come_back_with_the_grant_and_are_sealed_at_rest(engine: Engine, grant: Grant) -> None:
    store = SqlGrantStore(engine, SEALER)
    code = _code(store, grant)
    access = new_token()
    store.issue(TokenKind.ACCESS, access, grant.grant_id, NOW, NOW + HOUR)

    outcome, redeemed = store.redeem(TokenKind.CODE, code, NOW)
    found = store.find(TokenKind.ACCESS, access, NOW)

    assert outcome is Redemption.OK and redeemed is not None and found is not None
    assert redeemed.released == RELEASED and found.grant.released == RELEASED
    payload = _stored(engine, grant.grant_id)
    assert "anna@example.org" not in payload and "Anna" not in payload and "Tampere" not in payload
    assert json.loads(payload)["released"].startswith("v1.")
    assert "anna" not in repr(redeemed)  # never in a log line either


@pytest.mark.parametrize("damage", ["another grant's", "plain", "no sealer"])
def test_released_values_that_cannot_be_trusted_read_as_not_kept(engine: Engine, grant: Grant, damage: str) -> None:
    store = SqlGrantStore(engine, SEALER)
    _code(store, grant)
    other = replace(grant, grant_id="grant-2", released={"email": "eve@example.org", "email_verified": True})
    code = _code(store, other)
    if damage == "another grant's":  # grant-1's sealed value copied into grant-2's row
        moved = json.loads(_stored(engine, grant.grant_id))["released"]
        _rewrite(engine, other.grant_id, moved)
    elif damage == "plain":
        _rewrite(engine, other.grant_id, json.dumps(RELEASED))

    reader = SqlGrantStore(engine) if damage == "no sealer" else store
    outcome, redeemed = reader.redeem(TokenKind.CODE, code, NOW)

    assert outcome is Redemption.OK and redeemed is not None
    assert redeemed.released is None  # the provider reads the unified profile instead
    assert redeemed == other  # everything else of the grant as stored


def test_a_store_without_a_sealer_keeps_no_values(engine: Engine, grant: Grant) -> None:
    SqlGrantStore(engine).create_grant(grant)

    payload = json.loads(_stored(engine, grant.grant_id))

    assert "released" not in payload and "anna@example.org" not in json.dumps(payload)


def _rewrite(engine: Engine, grant_id: str, released: str) -> None:
    payload = json.loads(_stored(engine, grant_id))
    payload["released"] = released
    with engine.begin() as connection:
        connection.execute(update(OidcGrantRow).where(OidcGrantRow.grant_id == grant_id)
                           .values(payload=json.dumps(payload)))


def test_a_grant_and_its_code_are_one_write(engine: Engine, grant: Grant) -> None:
    store = SqlGrantStore(engine, SEALER)
    code = new_token()
    store.create_grant(grant, NewToken(TokenKind.CODE, code, NOW, NOW + HOUR))
    taken = new_token()

    with pytest.raises(IntegrityError):  # the grant id is taken: its code is not stored either
        store.create_grant(grant, NewToken(TokenKind.CODE, taken, NOW, NOW + HOUR))

    assert store.redeem(TokenKind.CODE, code, NOW) == (Redemption.OK, grant)
    assert store.redeem(TokenKind.CODE, taken, NOW) == (Redemption.INVALID, None)
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(OidcTokenRow)) == 1
