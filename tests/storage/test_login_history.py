"""The login history in SQL (``broker.storage.login_history``; issue 17) on SQLite and PostgreSQL: new devices and
networks, velocity in the window, other networks, failed second factors, retention, the account's deletion, and
no raw address in any column."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, text

from broker.core.model import UpstreamIdentity
from broker.core.risk import LoginPlace, LoginSignals, login_place
from broker.storage import SqlAccountStore, SqlLoginHistory
from broker.storage import login_history as module
from broker.storage.sealing import Sealer
from broker.storage.tables import LoginHistoryRow, SecondFactorFailureRow

#: the tests' own clock: now, to the minute (no test depends on a date)
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
KEY = secrets.token_bytes(32)
WINDOW = timedelta(hours=1)
HOME = login_place("198.51.100.20", "laptop", KEY)


def _account(engine: Engine, identity: UpstreamIdentity) -> str:
    account, _ = SqlAccountStore(engine, Sealer([secrets.token_bytes(32)])).create_with_identity(identity, NOW)
    return account.account_id


@pytest.fixture
def history(engine: Engine) -> SqlLoginHistory:
    return SqlLoginHistory(engine, retention=timedelta(days=30))


@pytest.fixture
def account(engine: Engine, make_identity: Callable[..., UpstreamIdentity]) -> str:
    return _account(engine, make_identity())


@pytest.fixture
def other(engine: Engine, make_identity: Callable[..., UpstreamIdentity]) -> str:
    return _account(engine, make_identity(subject="subject-2"))


def _count(engine: Engine, table: type[LoginHistoryRow] | type[SecondFactorFailureRow]) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(table)) or 0)


def test_a_first_login_has_no_history(history: SqlLoginHistory, account: str) -> None:
    assert history.signals(account, HOME, NOW, WINDOW) == LoginSignals(
        new_device=True, new_network=True, first_login=True)


def test_a_usual_login_is_known_and_quiet(history: SqlLoginHistory, account: str) -> None:
    history.record(account, HOME, NOW - timedelta(days=3))

    assert history.signals(account, HOME, NOW, WINDOW) == LoginSignals()


def test_a_new_device_and_a_new_network_are_told_apart(history: SqlLoginHistory, account: str) -> None:
    history.record(account, HOME, NOW - timedelta(days=3))
    phone_at_home = login_place("198.51.100.77", "phone", KEY)  # same /24
    laptop_abroad = login_place("192.0.2.5", "laptop", KEY)

    at_home = history.signals(account, phone_at_home, NOW, WINDOW)
    abroad = history.signals(account, laptop_abroad, NOW, WINDOW)

    assert (at_home.new_device, at_home.new_network, at_home.first_login) == (True, False, False)
    assert (abroad.new_device, abroad.new_network) == (False, True)


def test_a_browser_without_a_device_cookie_is_always_a_new_device(history: SqlLoginHistory, account: str) -> None:
    bare = login_place("198.51.100.20", "", KEY)
    history.record(account, bare, NOW - timedelta(days=1))

    assert history.signals(account, bare, NOW, WINDOW).new_device


def test_devices_and_networks_are_per_account(history: SqlLoginHistory, account: str, other: str) -> None:
    history.record(other, HOME, NOW - timedelta(days=1))

    signals = history.signals(account, HOME, NOW, WINDOW)

    assert (signals.new_device, signals.new_network, signals.first_login) == (True, True, True)


def test_velocity_counts_only_the_window(history: SqlLoginHistory, account: str, other: str) -> None:
    for minutes in (5, 20, 59, 61, 300):
        history.record(account, HOME, NOW - timedelta(minutes=minutes))
    history.record(other, HOME, NOW - timedelta(minutes=10))
    history.record(other, login_place("198.51.100.21", "x", KEY), NOW - timedelta(minutes=10))  # another address

    signals = history.signals(account, HOME, NOW, WINDOW)

    assert signals.logins_by_account == 3
    assert signals.logins_by_address == 4  # three of the account and one of the other, from 198.51.100.20
    assert history.signals(account, HOME, NOW, timedelta(minutes=10)).logins_by_account == 1


def test_another_network_within_the_window_is_distant(history: SqlLoginHistory, account: str) -> None:
    elsewhere = login_place("192.0.2.5", "laptop", KEY)
    history.record(account, elsewhere, NOW - timedelta(hours=2))
    history.record(account, HOME, NOW - timedelta(minutes=30))

    assert not history.signals(account, HOME, NOW, WINDOW).distant_networks  # the other was 2 hours ago
    assert history.signals(account, elsewhere, NOW, WINDOW).distant_networks  # home 30 minutes ago


def test_failed_second_factors_are_counted_in_the_window(history: SqlLoginHistory, account: str,
                                                         other: str) -> None:
    for minutes in (1, 2, 30, 90):
        history.record_second_factor_failure(account, NOW - timedelta(minutes=minutes))
    history.record_second_factor_failure(other, NOW - timedelta(minutes=1))

    assert history.signals(account, HOME, NOW, WINDOW).failed_second_factors == 3


def test_old_rows_are_deleted_on_write(engine: Engine, history: SqlLoginHistory, account: str) -> None:
    history.record(account, HOME, NOW - timedelta(days=40))
    history.record_second_factor_failure(account, NOW - timedelta(days=40))
    history.record(account, HOME, NOW - timedelta(days=20))

    history.record(account, HOME, NOW)

    with engine.connect() as connection:
        kept = sorted(connection.scalars(select(LoginHistoryRow.at)))
    assert kept == [NOW - timedelta(days=20), NOW]
    assert _count(engine, SecondFactorFailureRow) == 0


def test_the_purge_is_bounded(engine: Engine, history: SqlLoginHistory, account: str,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "PURGE_BATCH", 2)
    for days in (45, 44, 43):
        history.record_second_factor_failure(account, NOW - timedelta(days=days))

    history.record_second_factor_failure(account, NOW)

    with engine.connect() as connection:
        kept = sorted(connection.scalars(select(SecondFactorFailureRow.at)))
    assert kept == [NOW - timedelta(days=43), NOW]  # the oldest two went first


def test_deleting_the_account_deletes_its_history(engine: Engine, history: SqlLoginHistory, account: str,
                                                  other: str) -> None:
    history.record(account, HOME, NOW)
    history.record_second_factor_failure(account, NOW)
    history.record(other, HOME, NOW)

    with engine.begin() as connection:
        connection.execute(text("DELETE FROM accounts WHERE account_id = :id"), {"id": account})

    assert (_count(engine, LoginHistoryRow), _count(engine, SecondFactorFailureRow)) == (1, 0)


def test_no_raw_address_is_stored(engine: Engine, history: SqlLoginHistory, account: str) -> None:
    history.record(account, login_place("203.0.113.77", "device-123", KEY), NOW)

    with engine.connect() as connection:
        row = connection.execute(select(LoginHistoryRow)).one()
    stored = " ".join(str(value) for value in row)
    assert "203.0.113" not in stored
    assert "device-123" not in stored


@pytest.mark.parametrize("place", [
    LoginPlace("", "203.0.113.0/24", "a" * 64),
    LoginPlace("", "a" * 64, "203.0.113.77"),
    LoginPlace("device-123", "a" * 64, "a" * 64),
])
def test_raw_values_are_refused(history: SqlLoginHistory, account: str, place: LoginPlace) -> None:
    with pytest.raises(ValueError, match="keyed hashes"):
        history.record(account, place, NOW)
    with pytest.raises(ValueError, match="keyed hashes"):
        history.signals(account, place, NOW, WINDOW)


def test_naive_times_are_refused(history: SqlLoginHistory, account: str) -> None:
    with pytest.raises(ValueError, match="naive"):
        history.signals(account, HOME, NOW.replace(tzinfo=None), WINDOW)
