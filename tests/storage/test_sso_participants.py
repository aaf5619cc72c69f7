"""The participants of an SSO session, server-side (``SqlSsoSessionRegistry.join``/``participants``; issue 16)."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from broker.core.model import Protocol, UpstreamIdentity
from broker.core.ports import SsoSessionRecord, SsoSessionRegistry
from broker.core.sessions import Participant
from broker.storage import SqlAccountStore
from broker.storage.sealing import Sealer
from broker.storage.sso_sessions import SqlSsoSessionRegistry
from broker.storage.tables import SsoParticipantRow, SsoSessionRow

SEALER = Sealer([secrets.token_bytes(32)])
#: the tests' own clock: now, to the minute (no test depends on a date)
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
SP1 = Participant("https://sp1.example.org", Protocol.SAML, "_n1", TRANSIENT)
SP2 = Participant("https://sp2.example.org", Protocol.SAML, "pairwise-2", None)
RP = Participant("client-1", Protocol.OIDC, "sub-1")
THREADS = 16


def _session(engine: Engine, identity: UpstreamIdentity, sid: str) -> tuple[SsoSessionRegistry, str]:
    account, _ = SqlAccountStore(engine, SEALER).create_with_identity(identity, NOW)
    registry = SqlSsoSessionRegistry(engine)
    registry.register(SsoSessionRecord(sid, account.account_id, "example-idp", NOW, NOW, NOW + timedelta(hours=8),
                                       "test agent"))
    return registry, account.account_id


def _count(engine: Engine, table: type[SsoParticipantRow] | type[SsoSessionRow]) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(table)) or 0)


def test_participants_in_the_order_they_first_joined(engine: Engine,
                                                     make_identity: Callable[..., UpstreamIdentity]) -> None:
    registry, _ = _session(engine, make_identity(), "sid-1")
    assert registry.participants("sid-1") == []
    registry.join("sid-1", SP2, NOW)
    registry.join("sid-1", RP, NOW)  # the same instant: the order is still the order of joining
    registry.join("sid-1", SP1, NOW - timedelta(seconds=1))
    assert registry.participants("sid-1") == [SP2, RP, SP1]
    assert registry.participants("another-sid") == []


def test_joining_again_updates_the_subject_and_never_duplicates(engine: Engine,
                                                                make_identity: Callable[..., UpstreamIdentity]) -> None:
    registry, _ = _session(engine, make_identity(), "sid-1")
    registry.join("sid-1", SP1, NOW)
    registry.join("sid-1", RP, NOW)
    registry.join("sid-1", SP1, NOW + timedelta(minutes=1))  # the same answer again: idempotent
    again = Participant(SP1.party_id, Protocol.SAML, "_n2", TRANSIENT)  # a new transient NameID
    registry.join("sid-1", again, NOW + timedelta(minutes=2))

    assert registry.participants("sid-1") == [again, RP]  # keeps its first place
    assert _count(engine, SsoParticipantRow) == 2
    with engine.connect() as connection:
        row = connection.execute(select(SsoParticipantRow.joined_at, SsoParticipantRow.last_seen)
                                 .where(SsoParticipantRow.party_id == SP1.party_id)).one()
    assert (row.joined_at, row.last_seen) == (NOW, NOW + timedelta(minutes=2))


def test_participants_stay_readable_after_the_session_ended(engine: Engine,
                                                            make_identity: Callable[..., UpstreamIdentity]) -> None:
    """Logout reads them after ending the session in the registry."""
    registry, account_id = _session(engine, make_identity(), "sid-1")
    registry.join("sid-1", SP1, NOW)
    registry.end_all(account_id, NOW)
    assert registry.participants("sid-1") == [SP1]


def test_joining_an_unknown_session_is_ignored(engine: Engine) -> None:
    registry = SqlSsoSessionRegistry(engine)
    registry.join("no-such-sid", SP1, NOW)
    assert registry.participants("no-such-sid") == []
    assert _count(engine, SsoParticipantRow) == 0


def test_deleting_the_account_deletes_its_sessions_and_their_participants(
    engine: Engine, make_identity: Callable[..., UpstreamIdentity],
) -> None:
    registry, account_id = _session(engine, make_identity(), "sid-1")
    other, _ = _session(engine, make_identity(subject="subject-2"), "sid-2")
    registry.join("sid-1", SP1, NOW)
    registry.join("sid-1", RP, NOW)
    other.join("sid-2", SP2, NOW)

    assert SqlAccountStore(engine, SEALER).delete_account(account_id)

    assert registry.participants("sid-1") == []
    assert other.participants("sid-2") == [SP2]  # another account's stay
    assert (_count(engine, SsoSessionRow), _count(engine, SsoParticipantRow)) == (1, 1)


def test_concurrent_joins_of_one_app_do_not_fail(engine: Engine,
                                                 make_identity: Callable[..., UpstreamIdentity]) -> None:
    """Two tabs answered by one SSO session at once: every join succeeds, one row remains."""
    registry, _ = _session(engine, make_identity(), "sid-1")
    start = threading.Barrier(THREADS)

    def join(n: int) -> None:
        start.wait()
        registry.join("sid-1", Participant(SP1.party_id, Protocol.SAML, f"_n{n}", TRANSIENT), NOW)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for future in [pool.submit(join, n) for n in range(THREADS)]:
            future.result(timeout=60)  # re-raises any thread's exception

    (joined,) = registry.participants("sid-1")
    assert joined.party_id == SP1.party_id and joined.subject in {f"_n{n}" for n in range(THREADS)}
    assert _count(engine, SsoParticipantRow) == 1
