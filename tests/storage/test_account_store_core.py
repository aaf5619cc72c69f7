"""The login path's account and consent calls in SQLAlchemy Core (issue 21) keep what the ORM versions did:
the row lock of ``record_use`` and joining a login step's transaction (``broker.storage.unit_of_work``)."""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from broker.core.consent import Consent, ConsentHow
from broker.core.model import UpstreamIdentity
from broker.storage import SqlAccountStore
from broker.storage.consents import SqlConsentStore
from broker.storage.sealing import Sealer
from broker.storage.unit_of_work import SqlUnitOfWork

SEALER = Sealer([secrets.token_bytes(32)])
Identity = Callable[..., UpstreamIdentity]


@pytest.fixture
def server_engine(engine: Engine) -> Engine:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer and no step transaction (broker.storage.unit_of_work)")
    return engine


def test_record_use_reads_claims_a_concurrent_login_is_writing_only_after_it_commits(
        server_engine: Engine, make_identity: Identity) -> None:
    """Two logins of one identity: the second reads the first's claims (FOR UPDATE), so the name the upstream
    sends only once, asserted by the first, is kept by the second instead of the stale one."""
    store = SqlAccountStore(server_engine, SEALER)
    now = datetime.now(UTC)
    account, _ = store.create_with_identity(make_identity(claims={"given_name": "Old", "email": "a@example.org"}),
                                            now)
    first = make_identity(claims={"given_name": "Ann", "email": "a@example.org"})
    second = dataclasses.replace(make_identity(claims={"email": "a@example.org"}),
                                 sent_once=frozenset({"given_name"}))
    done = threading.Event()

    def second_login() -> None:
        store.record_use(account.account_id, second, now + timedelta(seconds=2))
        done.set()

    other = threading.Thread(target=second_login)
    with SqlUnitOfWork(server_engine)():
        store.record_use(account.account_id, first, now + timedelta(seconds=1))
        other.start()
        assert not done.wait(0.5)  # the first login's step holds the identity's row
    other.join(10)
    assert done.is_set()
    assert store.last_claims(account.account_id) == {"given_name": "Ann", "email": "a@example.org"}


def test_a_step_sees_its_own_account_and_consent_and_stores_nothing_when_it_fails(
        server_engine: Engine, make_identity: Identity) -> None:
    accounts, consents = SqlAccountStore(server_engine, SEALER), SqlConsentStore(server_engine)
    anna = make_identity()
    now = datetime.now(UTC)
    with pytest.raises(RuntimeError), SqlUnitOfWork(server_engine)():
        account, created = accounts.create_with_identity(anna, now)
        assert created
        again, created_again = accounts.create_with_identity(anna, now)  # a lost race, in a SAVEPOINT
        assert (again, created_again) == (account, False)
        accounts.record_use(account.account_id, anna, now)
        consent = Consent(account.account_id, "app", frozenset({"email"}), frozenset(), "1", now, ConsentHow.PAGE)
        consents.record(consent)
        assert consents.current(account.account_id, "app") == consent
        assert accounts.get(account.account_id) == account
        assert [i.subject for i in accounts.identities(account.account_id)] == [anna.subject]
        raise RuntimeError("the step fails after its writes")
    assert accounts.find_by_identity(anna.issuer, anna.subject) is None
    assert consents.current(account.account_id, "app") is None


def test_a_step_commits_the_account_with_its_identity_and_consent(server_engine: Engine,
                                                                   make_identity: Identity) -> None:
    accounts, consents = SqlAccountStore(server_engine, SEALER), SqlConsentStore(server_engine)
    anna = make_identity(claims={"email": "anna@example.org"})
    now = datetime.now(UTC)
    with SqlUnitOfWork(server_engine)():
        account, _ = accounts.create_with_identity(anna, now)
        consents.record(Consent(account.account_id, "app", frozenset({"email"}), frozenset(), "1", now,
                                ConsentHow.PAGE))
    assert accounts.find_by_identity(anna.issuer, anna.subject) == account
    assert accounts.last_claims(account.account_id) == {"email": "anna@example.org"}
    current = consents.current(account.account_id, "app")
    assert current is not None and current.granted == frozenset({"email"})
