"""``SqlGrantStore``: hashed tokens, single use settled by the database, revocation of whole families."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, delete, func, select

from broker.core.grants import Grant, Redemption, TokenKind, new_token, token_hash
from broker.core.model import UpstreamIdentity
from broker.core.ports import GrantStore
from broker.storage import SqlAccountStore, SqlGrantStore
from broker.storage.sealing import Sealer
from broker.storage.tables import AccountRow, OidcGrantRow, OidcTokenRow
from tests.journeys.fakes_support import FakeGrantStore

SEALER = Sealer([secrets.token_bytes(32)])  # claims sealed at rest under a key of this run
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)

Identity = Callable[..., UpstreamIdentity]
MakeGrant = Callable[..., Grant]


@pytest.fixture
def store(engine: Engine) -> GrantStore:
    return SqlGrantStore(engine)


@pytest.fixture
def account_id(engine: Engine, make_identity: Identity) -> str:
    account, _ = SqlAccountStore(engine, SEALER).create_with_identity(make_identity(), NOW)
    return account.account_id


@pytest.fixture
def make_grant(store: GrantStore, account_id: str) -> MakeGrant:
    """Store and return a grant of the test account."""

    def make(grant_id: str = "grant-1", created_at: datetime = NOW, **changes: object) -> Grant:
        fields: dict[str, object] = {
            "grant_id": grant_id, "client_id": "city-app", "account_id": account_id,
            "scope": ("openid", "email", "profile"), "claims": frozenset({"email", "given_name"}),
            "redirect_uri": "https://app.example.org/cb", "nonce": "n-0S6_WzA2Mj", "code_challenge": "E9Melhoa",
            "auth_time": NOW - MINUTE, "acr": "urn:example:loa:2", "amr": ("pwd", "otp"), "sid": "sid-1",
            "upstream": "example-idp", "created_at": created_at, "id_token_claims": frozenset({"email"}),
        }
        fields.update(changes)
        grant = Grant(**fields)  # type: ignore[arg-type]
        store.create_grant(grant)
        return grant

    return make


def issue(store: GrantStore, kind: TokenKind, grant: Grant, lifetime: timedelta = HOUR) -> str:
    token = new_token()
    store.issue(kind, token, grant.grant_id, NOW, NOW + lifetime)
    return token


def test_issue_and_find_until_expiry(store: GrantStore, make_grant: MakeGrant) -> None:
    grant = make_grant()
    access = issue(store, TokenKind.ACCESS, grant, lifetime=10 * MINUTE)
    record = store.find(TokenKind.ACCESS, access, NOW + MINUTE)
    assert record is not None
    assert (record.kind, record.grant, record.issued_at, record.expires_at) == (
        TokenKind.ACCESS, grant, NOW, NOW + 10 * MINUTE)
    assert record.expires_at.tzinfo is UTC
    # an access token is not consumed by being found
    assert store.find(TokenKind.ACCESS, access, NOW + 9 * MINUTE) is not None
    assert store.find(TokenKind.ACCESS, access, NOW + 10 * MINUTE) is None
    assert store.find(TokenKind.ACCESS, new_token(), NOW) is None
    assert store.find(TokenKind.REFRESH, access, NOW) is None, "a token is found only as its own kind"


def test_grant_round_trip_equals_the_original(store: GrantStore, make_grant: MakeGrant) -> None:
    grant = make_grant(nonce=None, code_challenge=None, acr=None, amr=(), id_token_claims=frozenset())
    refresh = issue(store, TokenKind.REFRESH, grant)
    record = store.find(TokenKind.REFRESH, refresh, NOW)
    assert record is not None
    assert record.grant == grant
    other = make_grant("grant-2")
    code = issue(store, TokenKind.CODE, other)
    assert store.redeem(TokenKind.CODE, code, NOW) == (Redemption.OK, other)


def test_tokens_are_stored_only_hashed(engine: Engine, store: GrantStore, make_grant: MakeGrant) -> None:
    grant = make_grant()
    tokens = [issue(store, kind, grant) for kind in TokenKind]
    with engine.connect() as connection:
        rows = [tuple(str(value) for value in row) for row in connection.execute(select(OidcTokenRow.__table__))]
        grant_rows = [tuple(str(value) for value in row) for row in connection.execute(select(OidcGrantRow.__table__))]
    stored = " ".join(" ".join(row) for row in rows + grant_rows)
    assert len(rows) == 3
    for token in tokens:
        assert token not in stored
        assert token_hash(token) in stored
    assert {row[0] for row in rows} == {token_hash(t) for t in tokens}


def test_code_is_redeemed_once_then_reused_with_its_grant(store: GrantStore, make_grant: MakeGrant) -> None:
    grant = make_grant()
    code = issue(store, TokenKind.CODE, grant, lifetime=MINUTE)
    assert store.redeem(TokenKind.CODE, code, NOW) == (Redemption.OK, grant)
    assert store.redeem(TokenKind.CODE, code, NOW) == (Redemption.REUSED, grant)
    assert store.find(TokenKind.CODE, code, NOW) is None, "a used code is no longer live"
    # a replay is recognised as one even after the code expired, and after the family was revoked for it
    assert store.redeem(TokenKind.CODE, code, NOW + HOUR) == (Redemption.REUSED, grant)
    store.revoke_grant(grant.grant_id, NOW)
    assert store.redeem(TokenKind.CODE, code, NOW + MINUTE / 2) == (Redemption.REUSED, grant)


def test_refresh_token_is_single_use(store: GrantStore, make_grant: MakeGrant) -> None:
    grant = make_grant()
    refresh = issue(store, TokenKind.REFRESH, grant)
    assert store.find(TokenKind.REFRESH, refresh, NOW) is not None
    assert store.redeem(TokenKind.REFRESH, refresh, NOW) == (Redemption.OK, grant)
    assert store.find(TokenKind.REFRESH, refresh, NOW) is None
    assert store.redeem(TokenKind.REFRESH, refresh, NOW) == (Redemption.REUSED, grant)


def test_unknown_expired_or_other_kind_is_invalid(store: GrantStore, make_grant: MakeGrant) -> None:
    grant = make_grant()
    code = issue(store, TokenKind.CODE, grant, lifetime=MINUTE)
    assert store.redeem(TokenKind.CODE, new_token(), NOW) == (Redemption.INVALID, None)
    assert store.redeem(TokenKind.REFRESH, code, NOW) == (Redemption.INVALID, None)
    assert store.redeem(TokenKind.CODE, code, NOW + MINUTE) == (Redemption.INVALID, None)
    # none of these consumed it
    assert store.redeem(TokenKind.CODE, code, NOW) == (Redemption.OK, grant)


def test_access_tokens_cannot_be_redeemed(store: GrantStore, make_grant: MakeGrant) -> None:
    access = issue(store, TokenKind.ACCESS, make_grant())
    with pytest.raises(ValueError, match="single-use"):
        store.redeem(TokenKind.ACCESS, access, NOW)
    assert store.find(TokenKind.ACCESS, access, NOW) is not None


def test_eight_simultaneous_redemptions_only_one_wins(store: GrantStore, make_grant: MakeGrant) -> None:
    grant = make_grant()
    code = issue(store, TokenKind.CODE, grant)
    threads = 8
    start = threading.Barrier(threads)

    def redeem() -> tuple[Redemption, Grant | None]:
        start.wait()
        return store.redeem(TokenKind.CODE, code, NOW)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = [f.result(timeout=60) for f in [pool.submit(redeem) for _ in range(threads)]]
    assert results.count((Redemption.OK, grant)) == 1
    assert results.count((Redemption.REUSED, grant)) == threads - 1


def test_revoked_grant_makes_its_tokens_invalid(store: GrantStore, make_grant: MakeGrant) -> None:
    grant = make_grant()
    other = make_grant("grant-2")
    code, access, refresh = (issue(store, kind, grant) for kind in (TokenKind.CODE, TokenKind.ACCESS,
                                                                     TokenKind.REFRESH))
    others_access = issue(store, TokenKind.ACCESS, other)
    store.revoke_grant(grant.grant_id, NOW)
    assert store.redeem(TokenKind.CODE, code, NOW) == (Redemption.INVALID, None)
    assert store.redeem(TokenKind.REFRESH, refresh, NOW) == (Redemption.INVALID, None)
    assert store.find(TokenKind.ACCESS, access, NOW) is None
    assert store.find(TokenKind.REFRESH, refresh, NOW) is None
    assert store.find(TokenKind.ACCESS, others_access, NOW) is not None, "other grants are untouched"
    store.revoke_grant(grant.grant_id, NOW + MINUTE)  # again: harmless
    store.revoke_grant("no-such-grant", NOW)


def test_token_issued_after_its_grant_was_revoked_is_dead(store: GrantStore, make_grant: MakeGrant) -> None:
    grant = make_grant()
    store.revoke_grant(grant.grant_id, NOW)
    code = issue(store, TokenKind.CODE, grant)
    access = issue(store, TokenKind.ACCESS, grant)
    assert store.redeem(TokenKind.CODE, code, NOW) == (Redemption.INVALID, None)
    assert store.find(TokenKind.ACCESS, access, NOW) is None


def test_revoking_an_access_token_revokes_only_it(store: GrantStore, make_grant: MakeGrant) -> None:
    grant = make_grant()
    access, other_access, refresh = (issue(store, kind, grant) for kind in (TokenKind.ACCESS, TokenKind.ACCESS,
                                                                              TokenKind.REFRESH))
    record = store.revoke_token(TokenKind.ACCESS, access, NOW)
    assert record is not None
    assert (record.kind, record.grant, record.issued_at, record.expires_at) == (
        TokenKind.ACCESS, grant, NOW, NOW + HOUR)
    assert store.find(TokenKind.ACCESS, access, NOW) is None
    assert store.find(TokenKind.ACCESS, other_access, NOW) is not None
    assert store.find(TokenKind.REFRESH, refresh, NOW) is not None
    assert store.revoke_token(TokenKind.ACCESS, access, NOW) is None, "nothing live left to revoke"
    assert store.revoke_token(TokenKind.ACCESS, new_token(), NOW) is None
    assert store.revoke_token(TokenKind.REFRESH, other_access, NOW) is None, "only as its own kind"
    assert store.find(TokenKind.ACCESS, other_access, NOW) is not None


def test_revoking_a_refresh_token_revokes_its_grant(store: GrantStore, make_grant: MakeGrant) -> None:
    grant = make_grant()
    other = make_grant("grant-2")
    access, refresh = (issue(store, kind, grant) for kind in (TokenKind.ACCESS, TokenKind.REFRESH))
    others_refresh = issue(store, TokenKind.REFRESH, other)
    record = store.revoke_token(TokenKind.REFRESH, refresh, NOW)
    assert record is not None
    assert (record.kind, record.grant, record.issued_at, record.expires_at) == (
        TokenKind.REFRESH, grant, NOW, NOW + HOUR)
    assert store.find(TokenKind.ACCESS, access, NOW) is None, "RFC 7009 §2.1: the access tokens go too"
    assert store.redeem(TokenKind.REFRESH, refresh, NOW) == (Redemption.INVALID, None)
    code = issue(store, TokenKind.CODE, grant)
    assert store.redeem(TokenKind.CODE, code, NOW) == (Redemption.INVALID, None), "the grant itself is revoked"
    assert store.revoke_token(TokenKind.REFRESH, refresh, NOW) is None
    assert store.find(TokenKind.REFRESH, others_refresh, NOW) is not None


def test_used_or_expired_refresh_token_is_not_revoked(store: GrantStore, make_grant: MakeGrant) -> None:
    grant = make_grant()
    access, used = (issue(store, kind, grant) for kind in (TokenKind.ACCESS, TokenKind.REFRESH))
    assert store.redeem(TokenKind.REFRESH, used, NOW)[0] is Redemption.OK
    assert store.revoke_token(TokenKind.REFRESH, used, NOW) is None
    expired = issue(store, TokenKind.REFRESH, grant, lifetime=MINUTE)
    assert store.revoke_token(TokenKind.REFRESH, expired, NOW + MINUTE) is None
    assert store.find(TokenKind.ACCESS, access, NOW) is not None


def test_purge_expired(engine: Engine, store: GrantStore, make_grant: MakeGrant) -> None:
    old = make_grant("old", created_at=NOW - 2 * timedelta(days=1))
    recent = make_grant("recent", created_at=NOW - HOUR)  # no token yet: being issued its first one
    busy = make_grant("busy", created_at=NOW - 2 * timedelta(days=1))
    dead_code = issue(store, TokenKind.CODE, old, lifetime=-MINUTE)
    issue(store, TokenKind.ACCESS, old, lifetime=timedelta(0))
    issue(store, TokenKind.ACCESS, busy, lifetime=-MINUTE)
    live = issue(store, TokenKind.REFRESH, busy)
    used_code = issue(store, TokenKind.CODE, busy, lifetime=MINUTE)
    assert store.redeem(TokenKind.CODE, used_code, NOW)[0] is Redemption.OK

    assert store.purge_expired(NOW) == 4  # three tokens, one grant
    assert store.purge_expired(NOW) == 0
    with engine.connect() as connection:
        grants = set(connection.scalars(select(OidcGrantRow.grant_id)))
        tokens = connection.scalar(select(func.count()).select_from(OidcTokenRow))
    assert grants == {recent.grant_id, busy.grant_id}
    assert tokens == 2
    assert store.redeem(TokenKind.CODE, dead_code, NOW - 2 * MINUTE) == (Redemption.INVALID, None)
    assert store.redeem(TokenKind.CODE, used_code, NOW) == (Redemption.REUSED, busy), "used codes stay till expiry"
    assert store.find(TokenKind.REFRESH, live, NOW) is not None

    assert store.purge_expired(NOW + 2 * timedelta(days=1)) == 4  # two tokens, two grants


def test_deleting_an_account_deletes_its_grants_and_tokens(
    engine: Engine, store: GrantStore, make_grant: MakeGrant, account_id: str,
) -> None:
    grant = make_grant()
    access = issue(store, TokenKind.ACCESS, grant)
    with engine.begin() as connection:
        connection.execute(delete(AccountRow).where(AccountRow.account_id == account_id))
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(OidcGrantRow)) == 0
        assert connection.scalar(select(func.count()).select_from(OidcTokenRow)) == 0
    assert store.find(TokenKind.ACCESS, access, NOW) is None


# -- the SSO session ended: every grant issued in it goes (single logout, issue 18) -------------------------------

def test_revoke_session_revokes_the_grants_of_that_session_only(store: GrantStore, make_grant: MakeGrant) -> None:
    first, second = make_grant("g-1", sid="sid-A"), make_grant("g-2", sid="sid-A", client_id="other-app")
    elsewhere = make_grant("g-3", sid="sid-B")
    tokens = {grant.grant_id: (issue(store, TokenKind.ACCESS, grant), issue(store, TokenKind.REFRESH, grant))
              for grant in (first, second, elsewhere)}

    assert store.revoke_session("sid-A", NOW) == 2

    for grant in (first, second):
        access, refresh = tokens[grant.grant_id]
        assert store.find(TokenKind.ACCESS, access, NOW) is None
        assert store.redeem(TokenKind.REFRESH, refresh, NOW) == (Redemption.INVALID, None)
        code = issue(store, TokenKind.CODE, grant)
        assert store.redeem(TokenKind.CODE, code, NOW) == (Redemption.INVALID, None), "the grant itself is revoked"
    access, refresh = tokens[elsewhere.grant_id]
    assert store.find(TokenKind.ACCESS, access, NOW) is not None
    assert store.find(TokenKind.REFRESH, refresh, NOW) is not None
    assert store.revoke_session("sid-A", NOW + MINUTE) == 0, "nothing live is left"
    assert store.revoke_session("no-such-sid", NOW) == 0
    assert store.revoke_session("", NOW) == 0


def test_revoke_session_counts_only_grants_still_live(store: GrantStore, make_grant: MakeGrant) -> None:
    make_grant("g-1", sid="sid-A")
    revoked = make_grant("g-2", sid="sid-A")
    store.revoke_grant(revoked.grant_id, NOW - MINUTE)
    assert store.revoke_session("sid-A", NOW) == 1


def test_revoke_session_matches_the_sid_exactly(engine: Engine, store: GrantStore, make_grant: MakeGrant) -> None:
    """The sid is compared for equality (the ``sid`` column, revision 0016): LIKE wildcards in a sid, a sid that is
    part of another, or the same text in another member of the payload never match."""
    make_grant("underscore", sid="s_1")
    make_grant("letter", sid="sX1")
    make_grant("percent", sid="s%1")
    make_grant("longer", sid="s_12")
    make_grant("in-the-nonce", sid="other", nonce="s_1", upstream="s_1")

    assert store.revoke_session("s_1", NOW) == 1
    with engine.connect() as connection:
        revoked = set(connection.scalars(select(OidcGrantRow.grant_id).where(OidcGrantRow.revoked_at.is_not(None))))
    assert revoked == {"underscore"}
    assert store.revoke_session("s%", NOW) == 0
    assert store.revoke_session("s%1", NOW) == 1
    assert store.revoke_session('s"1', NOW) == 0


def test_the_fake_revokes_sessions_alike(make_grant: MakeGrant) -> None:
    fake = FakeGrantStore()
    for grant in (make_grant("g-1", sid="sid-A"), make_grant("g-2", sid="sid-A"), make_grant("g-3", sid="sid-B")):
        fake.create_grant(grant)
    access = new_token()
    fake.issue(TokenKind.ACCESS, access, "g-1", NOW, NOW + HOUR)

    assert fake.revoke_session("sid-A", NOW) == 2
    assert fake.find(TokenKind.ACCESS, access, NOW) is None
    assert fake.revoked == {"g-1", "g-2"}
    assert fake.revoke_session("sid-A", NOW) == 0
