"""The SQL audit log keeps a hash chain: gap-free ``seq``, each record linked to the one before, a chain head
written with every record. Tampering with the rows in the database is found and the first broken record named;
concurrent appenders (threads, or instances with their own engines) never fork the chain."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, Executable, delete, insert, select, text, update

from broker.core.audit import AuditEvent, AuditKind
from broker.core.audit_chain import GENESIS_HASH, ChainHead, ChainProblem, ProblemKind, record_hash
from broker.storage import SqlAuditLog, create_engine_for, upgrade
from broker.storage import audit as storage_audit
from broker.storage.audit import AuditChainHeadMissing
from broker.storage.tables import AuditChainHeadRow, AuditEventRow

AT = datetime(2026, 12, 8, 9, 30, 15, 250001, tzinfo=UTC)


def fill(log: SqlAuditLog, n: int) -> None:
    for i in range(n):
        log.record(AuditEvent(AuditKind.LOGIN_SUCCEEDED, AT + timedelta(seconds=i), account_id=f"acc-{i % 3}",
                              upstream="op", downstream="https://sp.example.org", reason=f"r{i}",
                              reference=f"REF{i}"))


def row_id(engine: Engine, seq: int) -> int:
    with engine.connect() as connection:
        found: int = connection.execute(select(AuditEventRow.id).where(AuditEventRow.seq == seq)).scalar_one()
    return found


def tamper(engine: Engine, *statements: Executable) -> None:
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(statement)


def forged_hash(engine: Engine, seq: int) -> str:
    """The hash an attacker would compute for record ``seq`` as it now stands (the format is public)."""
    with engine.connect() as connection:
        r = connection.execute(select(AuditEventRow).where(AuditEventRow.seq == seq)).one()
    return record_hash(r.prev_hash, r.seq, r.at, r.kind, r.account_id, r.upstream, r.downstream, r.reason,
                       r.reference)


def test_records_are_chained_and_the_head_follows(engine: Engine) -> None:
    log = SqlAuditLog(engine)
    assert log.head() == ChainHead(0, GENESIS_HASH)
    assert log.verify() is None
    fill(log, 3)

    with engine.connect() as connection:
        rows = connection.execute(select(AuditEventRow).order_by(AuditEventRow.id)).all()
    assert [r.seq for r in rows] == [1, 2, 3]
    assert [r.prev_hash for r in rows] == [GENESIS_HASH, rows[0].hash, rows[1].hash]
    assert rows[0].hash == record_hash(GENESIS_HASH, 1, AT, "login-succeeded", "acc-0", "op",
                                       "https://sp.example.org", "r0", "REF0")
    assert log.head() == ChainHead(3, rows[2].hash)
    check = log.check()
    assert check.problem is None and check.head == ChainHead(3, rows[2].hash)


def test_values_cut_to_their_columns_still_verify(engine: Engine) -> None:
    """The hash covers what is stored, after the reason (say) is cut to 1,024 characters."""
    log = SqlAuditLog(engine)
    log.record(AuditEvent(AuditKind.REQUEST_REFUSED, AT, upstream="u" * 300, reason="é" * 5000,
                          reference="R" * 100))
    with engine.connect() as connection:
        row = connection.execute(select(AuditEventRow)).one()
    assert (len(row.upstream), len(row.reason), len(row.reference)) == (255, 1024, 64)
    assert log.verify() is None


def test_an_edited_record_is_named(engine: Engine) -> None:
    log = SqlAuditLog(engine)
    fill(log, 5)
    tamper(engine, update(AuditEventRow).where(AuditEventRow.seq == 3).values(account_id="someone-else"))
    problem = log.verify()
    assert problem == ChainProblem(ProblemKind.EDITED, 3, row_id(engine, 3))
    assert problem.message == "record 3 was edited"


def test_an_edited_time_is_found(engine: Engine) -> None:
    log = SqlAuditLog(engine)
    fill(log, 3)
    tamper(engine, update(AuditEventRow).where(AuditEventRow.seq == 2).values(at=AT + timedelta(hours=1)))
    assert log.verify() == ChainProblem(ProblemKind.EDITED, 2, row_id(engine, 2))


def test_a_deleted_middle_record_is_named(engine: Engine) -> None:
    log = SqlAuditLog(engine)
    fill(log, 5)
    tamper(engine, delete(AuditEventRow).where(AuditEventRow.seq == 2))
    problem = log.verify()
    assert problem == ChainProblem(ProblemKind.MISSING, 2)
    assert problem.message == "record 2 is missing (deleted)"


def test_deleting_the_newest_records_is_found_through_the_head(engine: Engine) -> None:
    log = SqlAuditLog(engine)
    fill(log, 5)
    tamper(engine, delete(AuditEventRow).where(AuditEventRow.seq >= 4))
    problem = log.verify()
    assert problem == ChainProblem(ProblemKind.TAIL_DELETED, 4)
    assert problem.message == "the newest records after 3 were deleted"


def test_a_rewritten_middle_record_with_a_recomputed_hash_breaks_the_next_link(engine: Engine) -> None:
    log = SqlAuditLog(engine)
    fill(log, 5)
    tamper(engine, update(AuditEventRow).where(AuditEventRow.seq == 2).values(reason="forged"))
    tamper(engine, update(AuditEventRow).where(AuditEventRow.seq == 2).values(hash=forged_hash(engine, 2)))
    assert log.verify() == ChainProblem(ProblemKind.BROKEN_LINK, 3, row_id(engine, 3))


def test_replacing_the_newest_record_consistently_but_not_the_head_is_found(engine: Engine) -> None:
    log = SqlAuditLog(engine)
    fill(log, 4)
    tamper(engine, update(AuditEventRow).where(AuditEventRow.seq == 4).values(kind="logged-out"))
    tamper(engine, update(AuditEventRow).where(AuditEventRow.seq == 4).values(hash=forged_hash(engine, 4)))
    assert log.verify() == ChainProblem(ProblemKind.HEAD_MISMATCH, 4)


def test_reordered_records_are_found(engine: Engine) -> None:
    log = SqlAuditLog(engine)
    fill(log, 4)
    tamper(engine,
           update(AuditEventRow).where(AuditEventRow.seq == 2).values(seq=-2),
           update(AuditEventRow).where(AuditEventRow.seq == 3).values(seq=2),
           update(AuditEventRow).where(AuditEventRow.seq == -2).values(seq=3))
    assert log.verify() == ChainProblem(ProblemKind.EDITED, 2, row_id(engine, 2))  # its hash was made as record 3


def test_a_record_slipped_in_above_the_head_is_found(engine: Engine) -> None:
    log = SqlAuditLog(engine)
    fill(log, 2)
    head = log.head()
    assert head is not None
    digest = record_hash(head.hash, 3, AT, "login-succeeded", None, None, None, None, None)
    tamper(engine, insert(AuditEventRow).values(at=AT, kind="login-succeeded", seq=3, prev_hash=head.hash,
                                                hash=digest))
    assert log.verify() == ChainProblem(ProblemKind.BEYOND_HEAD, 3)


def test_a_missing_head_is_reported_and_stops_appends(engine: Engine) -> None:
    log = SqlAuditLog(engine)
    fill(log, 1)
    tamper(engine, delete(AuditChainHeadRow))
    assert log.verify() == ChainProblem(ProblemKind.NO_HEAD, 0)
    with pytest.raises(AuditChainHeadMissing):
        fill(log, 1)


@pytest.mark.parametrize(("records", "edited"), [(6, None), (7, 7), (7, 5), (6, 3)])
def test_verification_reads_in_batches(engine: Engine, monkeypatch: pytest.MonkeyPatch, records: int,
                                       edited: int | None) -> None:
    monkeypatch.setattr(storage_audit, "VERIFY_BATCH", 2)
    log = SqlAuditLog(engine)
    fill(log, records)
    if edited is None:
        assert log.verify() is None
        return
    tamper(engine, update(AuditEventRow).where(AuditEventRow.seq == edited).values(reason="x"))
    assert log.verify() == ChainProblem(ProblemKind.EDITED, edited, row_id(engine, edited))


def test_events_lists_the_newest_first_and_filters_by_account(engine: Engine) -> None:
    log = SqlAuditLog(engine)
    fill(log, 6)  # accounts acc-0, acc-1, acc-2, acc-0, acc-1, acc-2
    assert [r.seq for r in log.events(limit=4)] == [6, 5, 4, 3]
    newest = log.events(account_id="acc-1")
    assert [(r.seq, r.account_id, r.reason) for r in newest] == [(5, "acc-1", "r4"), (2, "acc-1", "r1")]
    assert newest[0].computed_hash() == newest[0].hash
    assert log.events(account_id="nobody") == []


# --- concurrency ----------------------------------------------------------------------------------------------

THREADS, EACH = 8, 25


def test_concurrent_appenders_never_fork_the_chain(database_url: str) -> None:
    """Eight appenders, each with its own engine (as separate broker instances would be), 25 records each."""
    upgrade(database_url)
    start = threading.Barrier(THREADS)

    def appender(worker: int) -> None:
        engine = create_engine_for(database_url)
        try:
            log = SqlAuditLog(engine)
            start.wait()
            for i in range(EACH):
                log.record(AuditEvent(AuditKind.LOGIN_SUCCEEDED, datetime.now(UTC), account_id=f"w{worker}",
                                      reason=str(i)))
        finally:
            engine.dispose()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for future in [pool.submit(appender, w) for w in range(THREADS)]:
            future.result(timeout=120)  # re-raises any thread's exception

    engine = create_engine_for(database_url)
    try:
        with engine.connect() as connection:
            seqs = connection.execute(select(AuditEventRow.seq).order_by(AuditEventRow.seq)).scalars().all()
            per_worker = connection.execute(text(
                "SELECT account_id, count(*) FROM audit_events GROUP BY account_id")).all()
        log = SqlAuditLog(engine)
        assert seqs == list(range(1, THREADS * EACH + 1))
        assert sorted(per_worker) == [(f"w{w}", EACH) for w in range(THREADS)]
        assert log.verify() is None
        head = log.head()
        assert head is not None and head.seq == THREADS * EACH
    finally:
        engine.dispose()


# --- the migration chains the records it finds -------------------------------------------------------------------


def test_migration_chains_existing_records_in_id_order(database_url: str) -> None:
    upgrade(database_url, "0003")
    engine = create_engine_for(database_url)
    try:
        with engine.begin() as connection:  # the columns of 0003 only
            for i in range(3):
                connection.execute(insert(AuditEventRow).values(
                    at=AT + timedelta(minutes=i), kind="login-failed", account_id=None if i else "acc",
                    reason="Zoë" if i == 1 else None))
        upgrade(database_url, "0004")
        log = SqlAuditLog(engine)
        assert log.verify() is None
        head = log.head()
        assert head is not None and head.seq == 3
        with engine.connect() as connection:
            rows = connection.execute(select(AuditEventRow).order_by(AuditEventRow.id)).all()
        assert [r.seq for r in rows] == [1, 2, 3] and rows[1].reason == "Zoë"
        assert rows[0].hash == record_hash(GENESIS_HASH, 1, AT, "login-failed", "acc", None, None, None, None)
        fill(log, 1)  # appends continue the migrated chain
        assert log.verify() is None and log.head() == ChainHead(4, log.events(limit=1)[0].hash)
    finally:
        engine.dispose()


def test_migration_of_an_empty_log_starts_an_empty_chain(database_url: str) -> None:
    upgrade(database_url, "0004")
    engine = create_engine_for(database_url)
    try:
        assert SqlAuditLog(engine).head() == ChainHead(0, GENESIS_HASH)
    finally:
        engine.dispose()
