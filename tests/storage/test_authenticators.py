"""Second factors in SQL (``broker.storage.authenticators``; issue 17): authenticator apps (RFC 6238) with their
secrets sealed and each time step accepted once, recovery codes stored hashed and spent once."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from sqlalchemy import Engine, event, func, select, update

from broker.core.factors import Authenticator, FactorKind
from broker.core.model import UpstreamIdentity
from broker.storage import SqlAccountStore
from broker.storage import authenticators as module
from broker.storage.authenticators import SqlAuthenticators, new_recovery_codes, new_totp_secret, totp_uri
from broker.storage.sealing import Sealer
from broker.storage.tables import AuthenticatorRow, RecoveryCodeRow

K1, K2 = secrets.token_bytes(32), secrets.token_bytes(32)
SEALER = Sealer([K1])
#: now, on a 30-second step boundary plus 7 s (codes are computed for it, relative to the real time)
NOW = datetime.now(UTC).replace(second=7, microsecond=0)
STEP = timedelta(seconds=30)
THREADS = 8


def _code(secret: str, at: datetime) -> str:
    return pyotp.TOTP(secret).at(at)


def _account(engine: Engine, identity: UpstreamIdentity) -> str:
    account, _ = SqlAccountStore(engine, SEALER).create_with_identity(identity, NOW)
    return account.account_id


@pytest.fixture
def store(engine: Engine) -> SqlAuthenticators:
    return SqlAuthenticators(engine, SEALER)


@pytest.fixture
def account(engine: Engine, make_identity: Callable[..., UpstreamIdentity]) -> str:
    return _account(engine, make_identity())


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements sent through ``engine`` meanwhile."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _count(engine: Engine, table: type[AuthenticatorRow] | type[RecoveryCodeRow]) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(table)) or 0)


def _other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# --- authenticator apps -----------------------------------------------------------------------------------

def test_enrol_then_verify_a_code_of_the_moment(store: SqlAuthenticators, account: str) -> None:
    secret = new_totp_secret()
    added = store.add_totp(account, "  my   phone ", secret, NOW)
    assert (added.kind, added.name, added.account_id, added.created_at) == (FactorKind.TOTP, "my phone", account, NOW)
    assert store.of(account) == [added]

    later = NOW + timedelta(minutes=5)
    verified = store.verify_totp(account, _code(secret, later), later)
    assert verified == Authenticator(added.authenticator_id, account, FactorKind.TOTP, "my phone", NOW, later)
    assert store.of(account)[0].last_used_at == later


def test_a_code_is_spaces_tolerant_but_only_of_the_enrolled_account(
        engine: Engine, store: SqlAuthenticators, account: str,
        make_identity: Callable[..., UpstreamIdentity]) -> None:
    other = _account(engine, make_identity(subject="subject-2"))
    secret = new_totp_secret()
    store.add_totp(account, "phone", secret, NOW)
    code = _code(secret, NOW)
    assert store.verify_totp(other, code, NOW) is None  # another account's app proves nothing here
    assert store.verify_totp(account, f" {code[:3]} {code[3:]}\n", NOW) is not None


def test_the_same_code_is_refused_the_second_time(store: SqlAuthenticators, account: str) -> None:
    secret = new_totp_secret()
    store.add_totp(account, "phone", secret, NOW)
    code = _code(secret, NOW)
    assert store.verify_totp(account, code, NOW) is not None
    assert store.verify_totp(account, code, NOW) is None
    assert store.verify_totp(account, code, NOW + timedelta(seconds=20)) is None  # still its step: replay


def test_one_step_of_drift_either_way_is_accepted_once(store: SqlAuthenticators, account: str) -> None:
    secret = new_totp_secret()
    store.add_totp(account, "phone", secret, NOW)
    assert store.verify_totp(account, _code(secret, NOW - 2 * STEP), NOW) is None  # two steps behind: too old
    assert store.verify_totp(account, _code(secret, NOW + 2 * STEP), NOW) is None  # two ahead: too far
    behind, ahead = _code(secret, NOW - STEP), _code(secret, NOW + STEP)
    assert store.verify_totp(account, behind, NOW) is not None
    assert store.verify_totp(account, behind, NOW) is None
    assert store.verify_totp(account, ahead, NOW) is not None
    assert store.verify_totp(account, ahead, NOW) is None


def test_an_older_step_after_a_newer_one_is_refused(store: SqlAuthenticators, account: str) -> None:
    secret = new_totp_secret()
    store.add_totp(account, "phone", secret, NOW)
    assert store.verify_totp(account, _code(secret, NOW + STEP), NOW) is not None
    assert store.verify_totp(account, _code(secret, NOW), NOW) is None
    assert store.verify_totp(account, _code(secret, NOW - STEP), NOW) is None
    assert store.verify_totp(account, _code(secret, NOW + 2 * STEP), NOW + STEP) is not None  # the next step is


def test_two_requests_with_one_code_at_once_pass_once(store: SqlAuthenticators, account: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request has read the authenticator (no step accepted yet) before any records its step: only the
    conditional UPDATE can stop the others."""
    secret = new_totp_secret()
    store.add_totp(account, "phone", secret, NOW)
    code = _code(secret, NOW)
    barrier = threading.Barrier(THREADS, timeout=30)
    open_secret = SqlAuthenticators._open_secret

    def open_then_wait(self: SqlAuthenticators, row: AuthenticatorRow) -> str | None:
        opened = open_secret(self, row)
        barrier.wait()
        return opened

    monkeypatch.setattr(SqlAuthenticators, "_open_secret", open_then_wait)
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda _: store.verify_totp(account, code, NOW), range(THREADS)))
    assert sum(result is not None for result in results) == 1


@pytest.mark.parametrize("typed", ["12345", "1234567", "12a456", "abcdef", "", "١٢٣٤٥٦", "12-345"])
def test_anything_but_six_digits_is_refused_without_touching_the_database(
        engine: Engine, store: SqlAuthenticators, account: str, typed: str) -> None:
    store.add_totp(account, "phone", new_totp_secret(), NOW)
    with _statements(engine) as sent:
        assert store.verify_totp(account, typed, NOW) is None
    assert sent == []


def test_a_wrong_code_is_refused(store: SqlAuthenticators, account: str) -> None:
    secret = new_totp_secret()
    store.add_totp(account, "phone", secret, NOW)
    assert store.verify_totp(account, _other_code(_code(secret, NOW)), NOW) is None
    assert store.verify_totp(account, _code(new_totp_secret(), NOW), NOW) is None  # another secret's code
    assert store.verify_totp(account, _code(secret, NOW), NOW) is not None  # a wrong code spends nothing


def test_every_app_of_the_account_is_tried(store: SqlAuthenticators, account: str) -> None:
    first, second = new_totp_secret(), new_totp_secret()
    store.add_totp(account, "phone", first, NOW)
    tablet = store.add_totp(account, "tablet", second, NOW + timedelta(seconds=1))
    verified = store.verify_totp(account, _code(second, NOW), NOW)
    assert verified is not None and verified.authenticator_id == tablet.authenticator_id


def test_the_secret_is_sealed_at_rest_and_bound_to_its_row(
        engine: Engine, store: SqlAuthenticators, account: str,
        make_identity: Callable[..., UpstreamIdentity]) -> None:
    secret = new_totp_secret()
    added = store.add_totp(account, "phone", secret, NOW)
    with engine.connect() as connection:
        stored = connection.scalar(select(AuthenticatorRow.secret_sealed))
    assert stored is not None and stored.startswith("v1.") and secret not in stored
    assert secret.lower() not in stored.lower()

    # the sealed secret copied into another account's authenticator does not open there
    other = _account(engine, make_identity(subject="subject-2"))
    theirs = store.add_totp(other, "phone", new_totp_secret(), NOW)
    with engine.begin() as connection:
        connection.execute(update(AuthenticatorRow)
                           .where(AuthenticatorRow.authenticator_id == theirs.authenticator_id)
                           .values(secret_sealed=stored))
    assert store.verify_totp(other, _code(secret, NOW), NOW) is None
    assert store.verify_totp(account, _code(secret, NOW), NOW) == Authenticator(
        added.authenticator_id, account, FactorKind.TOTP, "phone", NOW, NOW)


@pytest.mark.parametrize("planted", ["", "{}", "plain"])
def test_a_value_that_is_not_sealed_is_never_taken_as_a_secret(engine: Engine, store: SqlAuthenticators,
                                                               account: str, planted: str) -> None:
    """The sealer returns plain claims text ("" or a JSON object) as it is; a secret must be sealed."""
    store.add_totp(account, "phone", new_totp_secret(), NOW)
    with engine.begin() as connection:
        connection.execute(update(AuthenticatorRow).values(secret_sealed=planted))
    assert store.verify_totp(account, _code(pyotp.random_base32(), NOW), NOW) is None
    with engine.begin() as connection:  # one an attacker knows, written in clear: still refused
        connection.execute(update(AuthenticatorRow).values(secret_sealed="{" + "A" * 32))
    assert store.verify_totp(account, _code("A" * 32, NOW), NOW) is None


def test_a_secret_sealed_under_an_old_key_is_sealed_again_when_used(engine: Engine, account: str) -> None:
    secret = new_totp_secret()
    SqlAuthenticators(engine, Sealer([K1])).add_totp(account, "phone", secret, NOW)
    rotated = Sealer([K2, K1])
    assert SqlAuthenticators(engine, rotated).verify_totp(account, _code(secret, NOW), NOW) is not None
    with engine.connect() as connection:
        stored = connection.scalar(select(AuthenticatorRow.secret_sealed))
    assert stored is not None and rotated.is_current(stored)
    assert SqlAuthenticators(engine, Sealer([K2])).verify_totp(account, _code(secret, NOW + STEP),
                                                               NOW + STEP) is not None


def test_enrolment_refuses_a_weak_or_malformed_secret_and_an_empty_name(store: SqlAuthenticators,
                                                                        account: str) -> None:
    with pytest.raises(ValueError, match="128 bits"):
        store.add_totp(account, "phone", pyotp.random_base32()[:24], NOW)  # 120 bits
    with pytest.raises(ValueError, match="base32"):
        store.add_totp(account, "phone", "not base32 at all 0189", NOW)
    with pytest.raises(ValueError, match="name"):
        store.add_totp(account, "   ", new_totp_secret(), NOW)
    assert store.of(account) == []
    spaced = " ".join(re.findall("....", new_totp_secret().lower()))  # as apps show it: groups, lower case
    assert store.add_totp(account, "phone", spaced, NOW).kind is FactorKind.TOTP
    assert store.verify_totp(account, _code(spaced.replace(" ", "").upper(), NOW), NOW) is not None


def test_provisioning_uri_and_new_secrets() -> None:
    secret = new_totp_secret()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret) and secret != new_totp_secret()
    uri = urlparse(totp_uri(secret, "anna@example.org", "City Broker"))
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    query = parse_qs(uri.query)
    assert query["secret"] == [secret] and query["issuer"] == ["City Broker"]
    assert query.get("digits", ["6"]) == ["6"] and query.get("period", ["30"]) == ["30"]


# --- recovery codes ---------------------------------------------------------------------------------------

def test_recovery_codes_look_human_and_differ() -> None:
    codes = new_recovery_codes()
    assert len(codes) == 10 == len(set(codes))
    assert all(re.fullmatch(r"[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}", c) for c in codes)
    assert len(new_recovery_codes(3)) == 3


def test_each_recovery_code_works_once(engine: Engine, store: SqlAuthenticators, account: str) -> None:
    codes = new_recovery_codes()
    store.replace_recovery_codes(account, codes, NOW)
    [entry] = store.of(account)
    assert (entry.kind, entry.created_at, entry.last_used_at) == (FactorKind.RECOVERY, NOW, None)
    with engine.connect() as connection:
        hashes = list(connection.scalars(select(RecoveryCodeRow.code_hash)))
    assert len(hashes) == 10
    assert not any(code.replace("-", "") in stored or code in stored for code in codes for stored in hashes)

    for n, code in enumerate(codes):
        at = NOW + timedelta(minutes=n)
        used = store.use_recovery_code(account, code, at)
        assert used == Authenticator(entry.authenticator_id, account, FactorKind.RECOVERY, entry.name, NOW, at)
        assert store.use_recovery_code(account, code, at) is None
        if n < len(codes) - 1:
            assert [a.authenticator_id for a in store.of(account)] == [entry.authenticator_id]
    assert store.of(account) == []  # all spent: the entry is no longer listed


def test_a_recovery_code_may_be_typed_loosely(store: SqlAuthenticators, account: str) -> None:
    store.replace_recovery_codes(account, ["0k1m-2q4x-p3vd", "abcd-efgh-jk01", "s7t8-v9w0-x1y2"], NOW)
    assert store.use_recovery_code(account, " OKIM 2Q4X P3VD ", NOW) is not None  # O for 0, I for 1, case, spaces
    assert store.use_recovery_code(account, "abcdefghjkol", NOW) is not None  # no dashes, o and l
    assert store.use_recovery_code(account, "s7t8-v9w0-x1y3", NOW) is None  # one character off


@pytest.mark.parametrize("typed", ["", "short", "k7m2-9xq4-p3vd-" + "x" * 60, "k7m2_9xq4_p3vd", "ķ7m2-9xq4-p3vd"])
def test_a_malformed_recovery_code_is_refused_without_touching_the_database(
        engine: Engine, store: SqlAuthenticators, account: str, typed: str) -> None:
    store.replace_recovery_codes(account, new_recovery_codes(), NOW)
    with _statements(engine) as sent:
        assert store.use_recovery_code(account, typed, NOW) is None
    assert sent == []


def test_recovery_codes_belong_to_their_account(engine: Engine, store: SqlAuthenticators, account: str,
                                                make_identity: Callable[..., UpstreamIdentity]) -> None:
    other = _account(engine, make_identity(subject="subject-2"))
    codes = new_recovery_codes()
    store.replace_recovery_codes(account, codes, NOW)
    assert store.use_recovery_code(other, codes[0], NOW) is None
    assert store.use_recovery_code(account, codes[0], NOW) is not None


def test_replacing_the_codes_invalidates_the_old_ones(engine: Engine, store: SqlAuthenticators, account: str) -> None:
    old, new = new_recovery_codes(), new_recovery_codes()
    store.replace_recovery_codes(account, old, NOW)
    store.use_recovery_code(account, old[0], NOW)
    store.replace_recovery_codes(account, new, NOW + timedelta(days=1))
    assert all(store.use_recovery_code(account, code, NOW) is None for code in old)
    [entry] = store.of(account)
    assert (entry.kind, entry.created_at) == (FactorKind.RECOVERY, NOW + timedelta(days=1))
    assert _count(engine, RecoveryCodeRow) == 10 and _count(engine, AuthenticatorRow) == 1
    assert store.use_recovery_code(account, new[0], NOW) is not None


def test_replacing_refuses_weak_or_repeated_codes(store: SqlAuthenticators, account: str) -> None:
    with pytest.raises(ValueError, match="10 to 64"):
        store.replace_recovery_codes(account, ["k7m2-9xq4-p3vd", "short"], NOW)
    with pytest.raises(ValueError, match="differ"):
        store.replace_recovery_codes(account, ["k7m2-9xq4-p3vd", "K7M2 9XQ4 P3VD"], NOW)
    assert store.of(account) == []


def test_two_requests_with_one_recovery_code_at_once_pass_once(store: SqlAuthenticators, account: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request has found the code unused before any spends it: only the conditional UPDATE decides."""
    [code] = new_recovery_codes(1)
    store.replace_recovery_codes(account, [code], NOW)
    barrier = threading.Barrier(THREADS, timeout=30)
    matches = module._matches

    def match_then_wait(typed: str, stored: str) -> bool:
        matched = matches(typed, stored)
        barrier.wait()
        return matched

    monkeypatch.setattr(module, "_matches", match_then_wait)
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda _: store.use_recovery_code(account, code, NOW), range(THREADS)))
    assert sum(result is not None for result in results) == 1


# --- removal and account deletion ---------------------------------------------------------------------------

def test_remove_one_factor(engine: Engine, store: SqlAuthenticators, account: str,
                           make_identity: Callable[..., UpstreamIdentity]) -> None:
    other = _account(engine, make_identity(subject="subject-2"))
    secret, codes = new_totp_secret(), new_recovery_codes()
    app = store.add_totp(account, "phone", secret, NOW)
    store.replace_recovery_codes(account, codes, NOW + timedelta(seconds=1))
    [_, recovery] = store.of(account)

    assert store.remove(other, app.authenticator_id) is False  # not theirs
    assert store.remove(account, "no-such-id") is False
    assert store.remove(account, app.authenticator_id) is True
    assert store.remove(account, app.authenticator_id) is False
    assert store.verify_totp(account, _code(secret, NOW), NOW) is None
    assert store.of(account) == [recovery]

    assert store.remove(account, recovery.authenticator_id) is True
    assert store.use_recovery_code(account, codes[0], NOW) is None
    assert store.of(account) == []
    assert _count(engine, RecoveryCodeRow) == 0 and _count(engine, AuthenticatorRow) == 0


def test_deleting_the_account_deletes_its_factors(engine: Engine, store: SqlAuthenticators, account: str,
                                                  make_identity: Callable[..., UpstreamIdentity]) -> None:
    other = _account(engine, make_identity(subject="subject-2"))
    for owner in (account, other):
        store.add_totp(owner, "phone", new_totp_secret(), NOW)
        store.replace_recovery_codes(owner, new_recovery_codes(), NOW)
    assert (_count(engine, AuthenticatorRow), _count(engine, RecoveryCodeRow)) == (4, 20)

    assert SqlAccountStore(engine, SEALER).delete_account(account) is True
    assert store.of(account) == []
    assert (_count(engine, AuthenticatorRow), _count(engine, RecoveryCodeRow)) == (2, 10)
    assert len(store.of(other)) == 2


def test_an_email_address_is_sealed_at_rest_and_bound_to_its_row(
        engine: Engine, store: SqlAuthenticators, account: str,
        make_identity: Callable[..., UpstreamIdentity]) -> None:
    added = store.add_email(account, "backup", " anna.backup@example.net ", NOW)
    assert added.kind is FactorKind.EMAIL and store.of(account) == [added]
    with engine.connect() as connection:
        stored = connection.scalar(select(AuthenticatorRow.secret_sealed))
    assert stored is not None and stored.startswith("v1.") and "anna" not in stored.lower()
    assert store.email_address(account, added.authenticator_id) == "anna.backup@example.net"

    other = _account(engine, make_identity(subject="subject-2"))
    theirs = store.add_email(other, "mine", "them@example.net", NOW)
    with engine.begin() as connection:  # the sealed address copied into another account's row does not open there
        connection.execute(update(AuthenticatorRow)
                           .where(AuthenticatorRow.authenticator_id == theirs.authenticator_id)
                           .values(secret_sealed=stored))
    assert store.email_address(other, theirs.authenticator_id) is None
    assert store.email_address(other, added.authenticator_id) is None  # not another account's factor
    assert store.verify_totp(account, "123456", NOW) is None  # never taken for an authenticator app

    store.mark_used(account, added.authenticator_id, NOW + STEP)
    assert store.of(account)[0].last_used_at == NOW + STEP
    with pytest.raises(ValueError):
        store.add_email(account, "x", "two\nlines@example.org", NOW)
