"""The audit records of a login step are appended at its end, under one lock of a chain's head held only until the
step commits (``broker.storage.unit_of_work.at_step_end``; issue 21). PostgreSQL only: on SQLite a step is
separate writes, and each record is appended at once (``test_outside_a_step_a_record_is_appended_at_once``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, event, func, select, text

from broker.core.audit import AuditEvent, AuditKind
from broker.storage.audit import SqlAuditLog
from broker.storage.tables import AuditEventRow
from broker.storage.unit_of_work import SqlUnitOfWork, at_step_end

NOW = datetime.now(UTC).replace(microsecond=0)


def _event(n: int) -> AuditEvent:
    return AuditEvent(AuditKind.LOGIN_SUCCEEDED, NOW + timedelta(seconds=n), account_id=f"account-{n}",
                      reason=f"record {n}")


def _stored(engine: Engine) -> list[tuple[int, int, str | None]]:
    with engine.connect() as connection:
        rows = connection.execute(select(AuditEventRow.chain, AuditEventRow.seq, AuditEventRow.reason)
                                  .order_by(AuditEventRow.id)).all()
    return [(row.chain, row.seq, row.reason) for row in rows]


@pytest.fixture
def postgres(engine: Engine) -> Engine:
    if engine.dialect.name != "postgresql":
        pytest.skip("a step is one transaction on PostgreSQL only")
    return engine


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_connection: object, _cursor: object, statement: str, *_rest: object) -> None:
        seen.append(" ".join(statement.split()).upper())

    event.listen(engine, "before_cursor_execute", note)
    yield seen
    event.remove(engine, "before_cursor_execute", note)


def test_outside_a_step_a_record_is_appended_at_once(engine: Engine) -> None:
    audit = SqlAuditLog(engine)
    audit.record(_event(1))
    assert [reason for _chain, _seq, reason in _stored(engine)] == ["record 1"]
    assert audit.verify() is None


def test_a_steps_records_are_appended_together_at_its_end(postgres: Engine, statements: list[str]) -> None:
    audit = SqlAuditLog(postgres, first_chain=3)
    with SqlUnitOfWork(postgres)():
        for n in range(3):
            audit.record(_event(n))
        assert statements == []  # nothing sent yet: the head is not locked during the step
        assert _stored(postgres) == []
        statements.clear()
    locks = [s for s in statements if "FOR UPDATE" in s]
    inserts = [s for s in statements if s.startswith("INSERT INTO AUDIT_EVENTS")]
    moves = [s for s in statements if s.startswith("UPDATE AUDIT_CHAIN_HEAD")]
    assert (len(locks), len(inserts), len(moves)) == (1, 1, 1)  # one lock, one (multi-row) insert, one head move
    assert _stored(postgres) == [(3, 1, "record 0"), (3, 2, "record 1"), (3, 3, "record 2")]
    head = audit.head(3)
    assert head is not None and head.seq == 3
    assert audit.verify() is None


def test_a_step_that_fails_appends_nothing(postgres: Engine) -> None:
    audit = SqlAuditLog(postgres)
    with pytest.raises(RuntimeError, match="failed"), SqlUnitOfWork(postgres)():
        audit.record(_event(1))
        raise RuntimeError("the step failed")
    assert _stored(postgres) == []
    audit.record(_event(2))  # the chain goes on from where it was
    assert [(seq, reason) for _chain, seq, reason in _stored(postgres)] == [(1, "record 2")]
    assert audit.verify() is None


def test_the_heads_are_free_while_a_step_runs(postgres: Engine) -> None:
    """Another instance can append to any chain while a step that recorded has not ended: the step holds no
    chain head until its end."""
    audit = SqlAuditLog(postgres, first_chain=1)
    with SqlUnitOfWork(postgres)():
        audit.record(_event(1))
        with postgres.connect() as other:
            other.execute(text("SET lock_timeout = '2s'"))
            held = other.execute(text("SELECT id FROM audit_chain_head ORDER BY id FOR UPDATE NOWAIT")).all()
            assert [row.id for row in held] == list(range(1, 9))
            other.rollback()
    assert audit.verify() is None


def test_concurrent_steps_keep_every_chain_whole(postgres: Engine) -> None:
    audit = SqlAuditLog(postgres, first_chain=1)
    unit_of_work = SqlUnitOfWork(postgres)
    failures: list[BaseException] = []

    def logins(worker: int) -> None:
        try:
            for n in range(10):
                with unit_of_work():
                    audit.record(_event(worker * 100 + n))
                    audit.record(_event(worker * 100 + n + 50))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=logins, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    with postgres.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(AuditEventRow)) == 80
    assert audit.verify() is None


def test_at_step_end_is_none_without_a_step(engine: Engine) -> None:
    assert at_step_end(engine.pool, "key", lambda _connection, _items: None) is None
