"""``broker.core.linking``: accounts are found by (issuer, subject) only, never by e-mail."""

from __future__ import annotations

from datetime import datetime, timedelta

from broker.core.claims import ClaimValue
from broker.core.linking import resolve, resolve_account
from broker.core.model import Account, UpstreamIdentity
from tests.core.builders import NOW, identity
from tests.core.fakes import InMemoryAccountStore

SAME_EMAIL: dict[str, ClaimValue] = {"email": "anna@example.org", "email_verified": True}


def test_same_verified_email_from_two_upstreams_makes_two_accounts() -> None:
    store = InMemoryAccountStore()
    at_digid = identity(SAME_EMAIL)
    at_itsme = identity(SAME_EMAIL, upstream="itsme", issuer="https://idp.itsme.example/", subject="itsme-77")
    first, first_created = resolve_account(store, at_digid, NOW)
    second, second_created = resolve_account(store, at_itsme, NOW + timedelta(minutes=1))
    assert first_created and second_created
    assert first.account_id != second.account_id
    assert store.find_by_identity(at_digid.issuer, at_digid.subject) == first
    assert store.find_by_identity(at_itsme.issuer, at_itsme.subject) == second
    assert [(i.issuer, i.subject) for i in store.identities(first.account_id)] == [(at_digid.issuer, at_digid.subject)]
    assert [(i.issuer, i.subject) for i in store.identities(second.account_id)] == [(at_itsme.issuer, at_itsme.subject)]


def test_same_subject_at_another_issuer_is_another_person() -> None:
    store = InMemoryAccountStore()
    one, _ = resolve_account(store, identity(SAME_EMAIL, subject="12345"), NOW)
    other, created = resolve_account(store, identity(SAME_EMAIL, issuer="https://other.example/", subject="12345"), NOW)
    assert created
    assert other.account_id != one.account_id


def test_the_same_identity_finds_its_account_and_records_the_use() -> None:
    store = InMemoryAccountStore()
    account, created = resolve_account(store, identity({"email": "a@example.org"}), NOW)
    later = NOW + timedelta(days=3)
    again, created_again = resolve_account(store, identity({"email": "b@example.org"}), later)
    assert (created, created_again) == (True, False)
    assert again == account
    assert store.last_claims(account.account_id) == {"email": "b@example.org"}
    assert [i.last_used for i in store.identities(account.account_id)] == [later]


class _LosesTheRace(InMemoryAccountStore):
    """Another request links the identity between this request's lookup and its insert."""

    def __init__(self) -> None:
        super().__init__()
        self.create_calls = 0

    def find_by_identity(self, issuer: str, subject: str) -> Account | None:
        if not self.accounts:  # the winner commits just after our lookup saw nothing
            winner = identity({"email": "winner@example.org"}, issuer=issuer, subject=subject)
            super().create_with_identity(winner, NOW)
            return None
        return super().find_by_identity(issuer, subject)

    def create_with_identity(self, identity: UpstreamIdentity, now: datetime) -> tuple[Account, bool]:
        self.create_calls += 1
        return super().create_with_identity(identity, now)


def test_losing_a_creation_race_uses_the_winners_account_and_records_the_use() -> None:
    store = _LosesTheRace()
    account, created = resolve_account(store, identity({"email": "loser@example.org"}), NOW + timedelta(seconds=1))
    assert created is False
    assert store.create_calls == 1
    assert list(store.accounts) == [account.account_id]
    assert store.last_claims(account.account_id) == {"email": "loser@example.org"}


class _CountingStore(InMemoryAccountStore):
    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    def find_by_identity(self, issuer: str, subject: str) -> Account | None:
        self.lookups += 1
        return super().find_by_identity(issuer, subject)


def test_an_account_the_caller_found_is_not_looked_up_again() -> None:
    """Issue 21: the login journey looks the identity up before the risk and step-up steps; ``resolve`` uses it."""
    store = _CountingStore()
    account, _ = resolve_account(store, identity(SAME_EMAIL), NOW)
    store.lookups = 0

    resolved = resolve(store, identity({"email": "new@example.org", "email_verified": True}), NOW, account)
    created = resolve(store, identity(SAME_EMAIL, subject="someone-else"), NOW, None)

    assert store.lookups == 0
    assert resolved.account == account and not resolved.created
    assert store.last_claims(account.account_id)["email"] == "new@example.org"  # the use was recorded
    assert created.created and created.account != account


def test_an_account_unlinked_since_the_caller_looked_is_resolved_afresh() -> None:
    store = _CountingStore()
    gone = Account(account_id="erased-meanwhile", created_at=NOW)

    resolved = resolve(store, identity(SAME_EMAIL), NOW, gone)

    assert resolved.created and resolved.account != gone and store.lookups == 1
