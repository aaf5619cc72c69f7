"""One transaction per login step (``broker.storage.unit_of_work``; issue 21), on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, event, func, select

from broker.core.audit import AuditEvent, AuditKind
from broker.core.model import Protocol, UpstreamIdentity
from broker.core.ports import SsoSessionRecord
from broker.core.risk import login_place
from broker.core.sessions import Participant
from broker.storage import SqlAccountStore
from broker.storage.audit import SqlAuditLog
from broker.storage.login_history import SqlLoginHistory
from broker.storage.sealing import Sealer
from broker.storage.sso_sessions import SqlSsoSessionRegistry
from broker.storage.tables import AuditEventRow, LoginHistoryRow, SsoParticipantRow, SsoSessionRow
from broker.storage.unit_of_work import SqlUnitOfWork, in_step

SEALER = Sealer([secrets.token_bytes(32)])
NOW = datetime.now(UTC).replace(microsecond=0)
PLACE = login_place("198.51.100.7", "device-1", b"k" * 32)
APP = Participant("https://sp1.example.org", Protocol.SAML, "_n1", None)


class Stores:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.accounts = SqlAccountStore(engine, SEALER)
        self.sessions = SqlSsoSessionRegistry(engine)
        self.history = SqlLoginHistory(engine)
        self.audit = SqlAuditLog(engine)
        self.step = SqlUnitOfWork(engine)

    def login(self, identity: UpstreamIdentity, sid: str) -> str:
        """What a login's last step writes: account, history, SSO session and its app, audit record."""
        account, _ = self.accounts.create_with_identity(identity, NOW)
        self.accounts.record_use(account.account_id, identity, NOW)
        self.history.record(account.account_id, PLACE, NOW)
        self.sessions.register(SsoSessionRecord(sid, account.account_id, identity.upstream, NOW, NOW,
                                                NOW + timedelta(hours=8), "agent"))
        self.sessions.join(sid, APP, NOW)
        self.audit.record(AuditEvent(AuditKind.LOGIN_SUCCEEDED, NOW, account_id=account.account_id))
        return account.account_id

    def counts(self) -> tuple[int, ...]:
        with self.engine.connect() as connection:
            return tuple(int(connection.scalar(select(func.count()).select_from(table)) or 0)
                         for table in (SsoSessionRow, SsoParticipantRow, LoginHistoryRow, AuditEventRow))


@pytest.fixture
def stores(engine: Engine) -> Stores:
    if engine.dialect.name == "sqlite":
        pytest.skip("on SQLite a step is separate writes (test_on_sqlite_a_step_is_separate_writes)")
    return Stores(engine)


def test_on_sqlite_a_step_is_separate_writes(engine: Engine, make_identity: Callable[..., UpstreamIdentity]) -> None:
    """One writer: a step must not hold the write lock a write of the same request through another connection
    would wait for (the module docstring)."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    stores = Stores(engine)
    commits = _commits(engine)
    with pytest.raises(RuntimeError), stores.step():
        assert not in_step(engine.pool)
        stores.login(make_identity(), "sid-1")
        assert stores.counts() == (1, 1, 1, 1)  # each store committed its own
        raise RuntimeError("the answer failed")
    assert len(commits) >= 5


def _commits(engine: Engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "commit", lambda _connection: seen.append("commit"))
    return seen


def test_a_step_commits_once_and_its_writes_together(stores: Stores,
                                                     make_identity: Callable[..., UpstreamIdentity]) -> None:
    commits = _commits(stores.engine)
    with stores.step():
        assert in_step(stores.engine.pool)
        account_id = stores.login(make_identity(), "sid-1")
        assert stores.counts() == (0, 0, 0, 0)  # another connection sees nothing before the commit
        assert stores.accounts.identity_claims(account_id)  # the step's own reads see its writes
        assert stores.sessions.participants("sid-1") == [APP]
    assert not in_step(stores.engine.pool)
    assert commits == ["commit"]
    assert stores.counts() == (1, 1, 1, 1)
    assert stores.audit.verify() is None


def test_without_a_step_each_store_commits_its_own(stores: Stores,
                                                   make_identity: Callable[..., UpstreamIdentity]) -> None:
    commits = _commits(stores.engine)
    stores.login(make_identity(), "sid-1")
    assert len(commits) >= 5
    assert stores.counts() == (1, 1, 1, 1)


def test_a_step_that_fails_stores_nothing(stores: Stores, make_identity: Callable[..., UpstreamIdentity]) -> None:
    identity = make_identity()
    with pytest.raises(RuntimeError, match="the answer failed"), stores.step():
        stores.login(identity, "sid-1")
        raise RuntimeError("the answer failed")
    assert stores.counts() == (0, 0, 0, 0)
    assert stores.accounts.find_by_identity(identity.issuer, identity.subject) is None
    assert stores.audit.verify() is None  # the chain head's move was rolled back with its record


def test_a_handled_conflict_in_a_step_rolls_back_only_its_own_block(
        stores: Stores, make_identity: Callable[..., UpstreamIdentity]) -> None:
    """``create_with_identity`` catches the unique (issuer, subject) violation; in a step it runs in a SAVEPOINT,
    so on PostgreSQL the step's transaction is not aborted by it and the rest of the step is stored."""
    identity = make_identity()
    existing, created = stores.accounts.create_with_identity(identity, NOW)
    assert created
    with stores.step():
        found, created_again = stores.accounts.create_with_identity(identity, NOW)  # the unique key refuses it
        stores.sessions.register(SsoSessionRecord("sid-2", found.account_id, identity.upstream, NOW, NOW,
                                                  NOW + timedelta(hours=1), "agent"))
    assert (found.account_id, created_again) == (existing.account_id, False)
    assert stores.sessions.is_live("sid-2")


def test_a_step_inside_a_step_joins_it(stores: Stores, make_identity: Callable[..., UpstreamIdentity]) -> None:
    commits = _commits(stores.engine)
    with pytest.raises(RuntimeError), stores.step():
        with stores.step():
            stores.login(make_identity(), "sid-1")
        assert commits == []  # the inner step did not commit
        raise RuntimeError("later in the outer step")
    assert stores.counts() == (0, 0, 0, 0)


def test_join_is_one_statement_that_updates_a_second_time(stores: Stores,
                                                          make_identity: Callable[..., UpstreamIdentity]) -> None:
    stores.login(make_identity(), "sid-1")
    statements: list[str] = []
    event.listen(stores.engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_rest: statements.append(statement))
    again = Participant(APP.party_id, APP.protocol, "_n2", None)
    stores.sessions.join("sid-1", again, NOW + timedelta(minutes=1))
    stores.sessions.join("sid-1", again, NOW + timedelta(minutes=2))
    stores.sessions.join("no-such-session", again, NOW)  # an unknown session is ignored
    assert len([s for s in statements if s.lstrip().upper().startswith("INSERT")]) == 3
    assert stores.sessions.participants("sid-1") == [again]
    assert stores.sessions.participants("no-such-session") == []
