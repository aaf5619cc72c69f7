"""``SqlConsentStore``: consent answers as a history; the newest per (account, app) is in force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, delete, func, select

from broker.core.consent import Consent, ConsentHow
from broker.core.ports import ConsentStore
from broker.storage import SqlConsentStore, session_factory
from broker.storage.tables import AccountRow, ConsentRow

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
APP, OTHER = "https://sp.city.example/", "city-portal"


@pytest.fixture
def account_id(engine: Engine) -> str:
    with session_factory(engine).begin() as session:
        session.add(AccountRow(account_id="acc-1", created_at=NOW))
    return "acc-1"


def consent(party: str, at: datetime, how: ConsentHow = ConsentHow.PAGE, granted: frozenset[str] = frozenset({"email"}),
            declined: frozenset[str] = frozenset()) -> Consent:
    return Consent("acc-1", party, granted, declined, "v1", at, how)


def test_newest_answer_is_in_force(engine: Engine, account_id: str) -> None:
    store: ConsentStore = SqlConsentStore(engine)
    assert store.current(account_id, APP) is None
    first = consent(APP, NOW, granted=frozenset({"email"}), declined=frozenset({"given_name"}))
    store.record(first)
    assert store.current(account_id, APP) == first

    withdrawn = consent(APP, NOW + timedelta(days=1), ConsentHow.WITHDRAWN, frozenset())
    store.record(withdrawn)
    assert store.current(account_id, APP) == withdrawn
    assert store.current(account_id, OTHER) is None


def test_in_force_lists_one_answer_per_app_newest_first(engine: Engine, account_id: str) -> None:
    store = SqlConsentStore(engine)
    store.record(consent(APP, NOW))
    store.record(consent(OTHER, NOW + timedelta(minutes=1), ConsentHow.EXEMPT))
    latest = consent(APP, NOW + timedelta(minutes=2), granted=frozenset({"email", "given_name"}))
    store.record(latest)

    assert [(c.party_id, c.how) for c in store.in_force(account_id)] == [
        (APP, ConsentHow.PAGE), (OTHER, ConsentHow.EXEMPT)]
    assert store.in_force(account_id)[0] == latest
    assert [c.at for c in store.history(account_id)] == [NOW, NOW + timedelta(minutes=1), NOW + timedelta(minutes=2)]


def test_history_is_kept_and_goes_with_the_account(engine: Engine, account_id: str) -> None:
    store = SqlConsentStore(engine)
    for day in range(3):
        store.record(consent(APP, NOW + timedelta(days=day)))
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ConsentRow)).scalar_one() == 3
    with session_factory(engine).begin() as session:
        session.execute(delete(AccountRow).where(AccountRow.account_id == account_id))
    with engine.connect() as connection:  # erasure of the account erases its consents (ON DELETE CASCADE)
        assert connection.execute(select(func.count()).select_from(ConsentRow)).scalar_one() == 0
