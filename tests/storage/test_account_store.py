"""``SqlAccountStore``: accounts are found by (issuer, subject) only, and remember the last claims."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError, StatementError

from broker.core.linking import resolve_account
from broker.core.model import UpstreamIdentity
from broker.core.ports import AccountStore
from broker.storage import SqlAccountStore
from broker.storage.sealing import Sealer
from broker.storage.tables import LinkedIdentityRow

SEALER = Sealer([secrets.token_bytes(32)])  # claims sealed at rest under a key of this run
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

Identity = Callable[..., UpstreamIdentity]


def test_first_login_creates_account_and_second_finds_it(engine: Engine, make_identity: Identity) -> None:
    store: AccountStore = SqlAccountStore(engine, SEALER)
    anna = make_identity()
    account, created = resolve_account(store, anna, NOW)
    assert created
    assert account.created_at == NOW
    again, created_again = resolve_account(store, anna, NOW + timedelta(hours=1))
    assert (again, created_again) == (account, False)
    assert store.find_by_identity(anna.issuer, anna.subject) == account
    assert store.get(account.account_id) == account
    assert store.get("no-such-account") is None
    assert store.find_by_identity(anna.issuer, "someone-else") is None


def test_record_use_updates_last_used_and_claims(engine: Engine, make_identity: Identity) -> None:
    store = SqlAccountStore(engine, SEALER)
    account, _ = store.create_with_identity(make_identity(claims={"email": "old@example.org"}), NOW)
    later = NOW + timedelta(days=2)
    store.record_use(account.account_id, make_identity(claims={"email": "new@example.org", "locale": "nl"}), later)
    [linked] = store.identities(account.account_id)
    assert (linked.first_used, linked.last_used) == (NOW, later)
    assert store.last_claims(account.account_id) == {"email": "new@example.org", "locale": "nl"}


def test_timestamps_come_back_timezone_aware_utc(engine: Engine, make_identity: Identity) -> None:
    store = SqlAccountStore(engine, SEALER)
    plus_two = NOW.astimezone(timezone(timedelta(hours=2)))
    account, _ = store.create_with_identity(make_identity(), plus_two)
    found = store.get(account.account_id)
    assert found is not None
    assert found.created_at == NOW
    assert found.created_at.tzinfo is UTC
    [linked] = store.identities(account.account_id)
    assert linked.last_used.utcoffset() == timedelta(0)


def test_naive_timestamps_are_refused(engine: Engine, make_identity: Identity) -> None:
    with pytest.raises(StatementError, match="naive"):
        SqlAccountStore(engine, SEALER).create_with_identity(make_identity(), NOW.replace(tzinfo=None))


def test_last_claims_are_those_of_the_most_recently_used_identity(engine: Engine, make_identity: Identity) -> None:
    store = SqlAccountStore(engine, SEALER)
    account, _ = store.create_with_identity(make_identity(claims={"email": "first@example.org"}), NOW)
    second = make_identity(subject="other", issuer="https://other.example.org", claims={"email": "b@example.org"})
    _link(engine, account.account_id, second)
    store.record_use(account.account_id, second, NOW + timedelta(minutes=5))
    assert store.last_claims(account.account_id) == {"email": "b@example.org"}
    store.record_use(account.account_id, make_identity(claims={"email": "again@example.org"}), NOW + timedelta(1))
    assert store.last_claims(account.account_id) == {"email": "again@example.org"}
    assert [i.subject for i in store.identities(account.account_id)] == ["subject-1", "other"]


def test_last_claims_of_unknown_account_are_empty(engine: Engine) -> None:
    assert SqlAccountStore(engine, SEALER).last_claims("no-such-account") == {}


def test_claim_values_of_every_kind_round_trip(engine: Engine, make_identity: Identity) -> None:
    store = SqlAccountStore(engine, SEALER)
    claims = {"email": "a@example.org", "email_verified": True, "address": {"locality": "Gent", "country": "BE"}}
    account, _ = store.create_with_identity(make_identity(claims=claims), NOW)
    assert store.last_claims(account.account_id) == claims


def test_record_use_of_an_identity_not_linked_to_the_account_fails(engine: Engine, make_identity: Identity) -> None:
    store = SqlAccountStore(engine, SEALER)
    account, _ = store.create_with_identity(make_identity(), NOW)
    with pytest.raises(LookupError):
        store.record_use(account.account_id, make_identity(subject="stranger"), NOW)


def test_issuer_and_subject_are_unique(engine: Engine, make_identity: Identity) -> None:
    store = SqlAccountStore(engine, SEALER)
    first, _ = store.create_with_identity(make_identity(), NOW)
    second, _ = store.create_with_identity(make_identity(subject="subject-2"), NOW)
    with pytest.raises(IntegrityError):
        _link(engine, second.account_id, make_identity())
    again, created = store.create_with_identity(make_identity(), NOW)
    assert (again, created) == (first, False)
    with engine.connect() as connection:
        assert len(connection.execute(select(LinkedIdentityRow.id)).all()) == 2


def test_same_email_from_two_identities_makes_two_accounts(engine: Engine, make_identity: Identity) -> None:
    store = SqlAccountStore(engine, SEALER)
    same_mail = {"email": "anna@example.org", "email_verified": True}
    one, created_one = resolve_account(store, make_identity(subject="a", claims=same_mail), NOW)
    other = make_identity(subject="b", issuer="https://another-idp.example.org", claims=same_mail)
    two, created_two = resolve_account(store, other, NOW)
    assert created_one and created_two
    assert one.account_id != two.account_id


def test_deleting_an_account_deletes_its_identities(engine: Engine, make_identity: Identity) -> None:
    store = SqlAccountStore(engine, SEALER)
    account, _ = store.create_with_identity(make_identity(), NOW)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DELETE FROM accounts WHERE account_id = '{account.account_id}'")
    assert store.find_by_identity("https://idp.example.org", "subject-1") is None
    assert store.identities(account.account_id) == []


def _link(engine: Engine, account_id: str, identity: UpstreamIdentity) -> None:
    with engine.begin() as connection:
        connection.execute(insert(LinkedIdentityRow).values(
            account_id=account_id, issuer=identity.issuer, subject=identity.subject, upstream=identity.upstream,
            first_used=NOW, last_used=NOW, last_acr=None, last_claims="{}",
        ))


def test_record_use_keeps_sent_once_claims_not_a_stale_verification(engine: Engine, make_identity: Identity) -> None:
    store = SqlAccountStore(engine, SEALER)
    first = {"given_name": "Anna", "family_name": "Virtanen", "email": "anna@example.org", "email_verified": "true"}
    account, _ = store.create_with_identity(make_identity(claims=first), NOW)

    later = dataclasses.replace(make_identity(claims={"email": "anna@new.example.org", "locale": "fi"}),
                                sent_once=frozenset({"given_name", "family_name"}))
    store.record_use(account.account_id, later, NOW)

    assert store.last_claims(account.account_id) == {
        "given_name": "Anna", "family_name": "Virtanen", "email": "anna@new.example.org", "locale": "fi"}
