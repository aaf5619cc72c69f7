"""The login history in SQL (``broker.storage.login_history``; issue 17) on SQLite and PostgreSQL: new devices and
networks, velocity in the window, other networks, failed second factors, retention, the account's deletion, and
no raw address in any column."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, text

from broker.core.backoff import IN_FLIGHT, Failures
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


def test_old_rows_are_deleted_on_write(engine: Engine, account: str) -> None:
    history = SqlLoginHistory(engine, retention=timedelta(days=30), purge_every=1)
    history.record(account, HOME, NOW - timedelta(days=40))
    history.record_second_factor_failure(account, NOW - timedelta(days=40))
    history.record(account, HOME, NOW - timedelta(days=20))

    history.record(account, HOME, NOW)

    with engine.connect() as connection:
        kept = sorted(connection.scalars(select(LoginHistoryRow.at)))
    assert kept == [NOW - timedelta(days=20), NOW]
    assert _count(engine, SecondFactorFailureRow) == 0


def test_a_login_purges_once_in_purge_every(engine: Engine, account: str) -> None:
    history = SqlLoginHistory(engine, retention=timedelta(days=30), purge_every=3)
    history.record(account, HOME, NOW - timedelta(days=40))
    history.record(account, HOME, NOW)
    assert _count(engine, LoginHistoryRow) == 2  # the second login did not purge

    history.record(account, HOME, NOW)  # the third does

    assert _count(engine, LoginHistoryRow) == 2
    with pytest.raises(ValueError, match="purge_every"):
        SqlLoginHistory(engine, purge_every=0)


def test_purge_expired_deletes_everything_past_the_retention(engine: Engine, account: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "PURGE_BATCH", 2)  # several batches
    history = SqlLoginHistory(engine, retention=timedelta(days=30), purge_every=1000)
    for days in (31, 32, 33, 34, 35):
        history.record(account, HOME, NOW - timedelta(days=days))
        history.record_second_factor_failure(account, NOW - timedelta(days=days + 10))
    history.record(account, HOME, NOW - timedelta(days=29))
    deleted_on_write = 10 - (_count(engine, LoginHistoryRow) - 1) - _count(engine, SecondFactorFailureRow)

    assert history.purge_expired(NOW) == 10 - deleted_on_write

    assert (_count(engine, LoginHistoryRow), _count(engine, SecondFactorFailureRow)) == (1, 0)


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


# --- code entries: per account and per address, in flight, settled (core.backoff) --------------------------------

def test_failures_keep_the_address_hash_and_count_per_account_and_per_address(
        history: SqlLoginHistory, account: str, other: str) -> None:
    elsewhere = login_place("192.0.2.5", "x", KEY)
    history.record_second_factor_failure(account, NOW - timedelta(minutes=30), HOME.address)
    history.record_second_factor_failure(account, NOW - timedelta(minutes=10), elsewhere.address)
    history.record_second_factor_failure(other, NOW - timedelta(minutes=5), HOME.address)
    history.record_second_factor_failure(other, NOW - timedelta(minutes=90), HOME.address)  # out of the window
    history.record_second_factor_failure(account, NOW - timedelta(minutes=1))  # address not known

    attempt = history.begin_code_attempt(account, HOME.address, NOW, WINDOW)

    assert attempt.account == Failures(3, NOW - timedelta(minutes=1))  # itself not counted
    assert attempt.address == Failures(2, NOW - timedelta(minutes=5))
    assert history.signals(account, HOME, NOW, WINDOW).failed_second_factors == 3  # an entry in flight is no failure


def test_an_entry_in_flight_counts_for_others_until_it_is_old(history: SqlLoginHistory, account: str) -> None:
    history.begin_code_attempt(account, HOME.address, NOW, WINDOW)  # its code right: never settled

    parallel = history.begin_code_attempt(account, HOME.address, NOW + timedelta(seconds=1), WINDOW)
    later = history.begin_code_attempt(account, HOME.address, NOW + IN_FLIGHT + timedelta(minutes=1), WINDOW)

    assert parallel.account == parallel.address == Failures(1, NOW)
    assert later.account.count == 0 and later.address.count == 0  # both earlier entries were right answers


def test_a_wrong_answer_settles_its_entry_and_a_refused_one_is_withdrawn(
        engine: Engine, history: SqlLoginHistory, account: str) -> None:
    first = history.begin_code_attempt(account, HOME.address, NOW, WINDOW)
    history.record_second_factor_failure(account, NOW, HOME.address)
    refused = history.begin_code_attempt(account, HOME.address, NOW + timedelta(seconds=1), WINDOW)
    history.withdraw_code_attempt(refused.claim)
    history.withdraw_code_attempt(first.claim)  # a settled failure is not withdrawn

    after = history.begin_code_attempt(account, HOME.address, NOW + timedelta(minutes=5), WINDOW)

    assert refused.account == Failures(1, NOW)
    assert after.account == after.address == Failures(1, NOW)  # one row per wrong answer, none for the refused
    assert _count(engine, SecondFactorFailureRow) == 2  # the failure and ``after`` in flight
    assert history.signals(account, HOME, NOW + timedelta(minutes=5), WINDOW).failed_second_factors == 1


def test_parallel_entries_see_each_other(engine: Engine, account: str) -> None:
    """Recorded before counting: of entries made at once, the last to count sees every other one."""
    threads = 6
    start = threading.Barrier(threads)

    def enter(_: int) -> int:
        history = SqlLoginHistory(engine, retention=timedelta(days=30))
        start.wait()
        return history.begin_code_attempt(account, HOME.address, NOW, WINDOW).account.count

    with ThreadPoolExecutor(max_workers=threads) as pool:
        seen = list(pool.map(enter, range(threads)))

    assert max(seen) == threads - 1


def test_code_entries_are_purged_and_hold_no_raw_address(engine: Engine, history: SqlLoginHistory,
                                                         account: str) -> None:
    history.begin_code_attempt(account, HOME.address, NOW - timedelta(days=40), WINDOW)
    history.record_second_factor_failure(account, NOW - timedelta(days=40), HOME.address)

    history.record_second_factor_failure(account, NOW, login_place("203.0.113.77", "", KEY).address)

    with engine.connect() as connection:
        rows = connection.execute(select(SecondFactorFailureRow)).all()
    assert len(rows) == 1 and "203.0.113" not in " ".join(map(str, rows[0]))
    with pytest.raises(ValueError, match="keyed hash"):
        history.begin_code_attempt(account, "203.0.113.77", NOW, WINDOW)
    with pytest.raises(ValueError, match="keyed hash"):
        history.record_second_factor_failure(account, NOW, "203.0.113.77")
