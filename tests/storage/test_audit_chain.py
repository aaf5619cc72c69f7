"""The SQL audit log keeps hash chains: gap-free ``seq`` per chain, each record linked to the one before, a chain head
written with every record. Tampering with the rows in the database is found and the first broken record named, in
chain 1 (which holds the records from before there were chains) and in any other chain alike; concurrent
appenders (threads, or instances with their own engines) never fork a chain (``test_audit_chains.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import ColumnElement, Engine, Executable, delete, insert, select, update

from broker.core.audit import AuditEvent, AuditKind
from broker.core.audit_chain import (
    GENESIS_HASH,
    ChainHead,
    ChainProblem,
    ProblemKind,
    genesis_hash,
    record_hash,
)
from broker.storage import SqlAuditLog, create_engine_for, upgrade
from broker.storage import audit as storage_audit
from broker.storage.audit import AuditChainHeadMissing
from broker.storage.migrate import alembic_config
from broker.storage.tables import AuditChainHeadRow, AuditEventRow

AT = datetime(2026, 12, 8, 9, 30, 15, 250001, tzinfo=UTC)


@pytest.fixture(params=[1, 5], ids=["chain1", "chain5"])
def chain(request: pytest.FixtureRequest) -> int:
    """The chain the test appends to and tampers with: 1 (the records from before chains), and another."""
    number: int = request.param
    return number


def fill(log: SqlAuditLog, n: int) -> None:
    for i in range(n):
        log.record(AuditEvent(AuditKind.LOGIN_SUCCEEDED, AT + timedelta(seconds=i), account_id=f"acc-{i % 3}",
                              upstream="op", downstream="https://sp.example.org", reason=f"r{i}",
                              reference=f"REF{i}"))


def at(chain: int, seq: int) -> ColumnElement[bool]:
    return (AuditEventRow.chain == chain) & (AuditEventRow.seq == seq)


def row_id(engine: Engine, chain: int, seq: int) -> int:
    with engine.connect() as connection:
        found: int = connection.execute(select(AuditEventRow.id).where(at(chain, seq))).scalar_one()
    return found


def tamper(engine: Engine, *statements: Executable) -> None:
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(statement)


def forged_hash(engine: Engine, chain: int, seq: int) -> str:
    """The hash an attacker would compute for record ``seq`` as it now stands (the format is public)."""
    with engine.connect() as connection:
        r = connection.execute(select(AuditEventRow).where(at(chain, seq))).one()
    return record_hash(r.prev_hash, r.seq, r.at, r.kind, r.account_id, r.upstream, r.downstream, r.reason,
                       r.reference)


def test_records_are_chained_and_the_head_follows(engine: Engine, chain: int) -> None:
    log = SqlAuditLog(engine, chain)
    assert log.head(chain) == ChainHead(0, genesis_hash(chain), chain)
    assert log.verify() is None
    fill(log, 3)

    with engine.connect() as connection:
        rows = connection.execute(select(AuditEventRow).order_by(AuditEventRow.id)).all()
    assert [(r.chain, r.seq) for r in rows] == [(chain, 1), (chain, 2), (chain, 3)]
    assert [r.prev_hash for r in rows] == [genesis_hash(chain), rows[0].hash, rows[1].hash]
    assert rows[0].hash == record_hash(genesis_hash(chain), 1, AT, "login-succeeded", "acc-0", "op",
                                       "https://sp.example.org", "r0", "REF0")
    assert log.head(chain) == ChainHead(3, rows[2].hash, chain)
    check = log.check()
    assert check.problem is None and ChainHead(3, rows[2].hash, chain) in check.heads and len(check.heads) == 8
    assert check.head is not None and check.head.seq == 3


def test_chain_1_starts_from_zeros_and_the_others_from_their_own_genesis() -> None:
    """Chain 1's records predate chains and were hashed from 64 zeros; each other chain has a distinct start."""
    assert genesis_hash(1) == GENESIS_HASH
    others = {genesis_hash(n) for n in range(2, 9)}
    assert len(others) == 7 and GENESIS_HASH not in others


def test_values_cut_to_their_columns_still_verify(engine: Engine) -> None:
    """The hash covers what is stored, after the reason (say) is cut to 1,024 characters."""
    log = SqlAuditLog(engine)
    log.record(AuditEvent(AuditKind.REQUEST_REFUSED, AT, upstream="u" * 300, reason="é" * 5000,
                          reference="R" * 100))
    with engine.connect() as connection:
        row = connection.execute(select(AuditEventRow)).one()
    assert (len(row.upstream), len(row.reason), len(row.reference)) == (255, 1024, 64)
    assert log.verify() is None


def test_an_edited_record_is_named(engine: Engine, chain: int) -> None:
    log = SqlAuditLog(engine, chain)
    fill(log, 5)
    tamper(engine, update(AuditEventRow).where(at(chain, 3)).values(account_id="someone-else"))
    problem = log.verify()
    assert problem == ChainProblem(ProblemKind.EDITED, 3, row_id(engine, chain, 3), chain)
    assert problem.message == f"chain {chain}: record 3 was edited"


def test_an_edited_time_is_found(engine: Engine, chain: int) -> None:
    log = SqlAuditLog(engine, chain)
    fill(log, 3)
    tamper(engine, update(AuditEventRow).where(at(chain, 2)).values(at=AT + timedelta(hours=1)))
    assert log.verify() == ChainProblem(ProblemKind.EDITED, 2, row_id(engine, chain, 2), chain)


def test_a_deleted_middle_record_is_named(engine: Engine, chain: int) -> None:
    log = SqlAuditLog(engine, chain)
    fill(log, 5)
    tamper(engine, delete(AuditEventRow).where(at(chain, 2)))
    problem = log.verify()
    assert problem == ChainProblem(ProblemKind.MISSING, 2, chain=chain)
    assert problem.message == f"chain {chain}: record 2 is missing (deleted)"


def test_deleting_the_newest_records_is_found_through_the_head(engine: Engine, chain: int) -> None:
    log = SqlAuditLog(engine, chain)
    fill(log, 5)
    tamper(engine, delete(AuditEventRow).where(AuditEventRow.seq >= 4))
    problem = log.verify()
    assert problem == ChainProblem(ProblemKind.TAIL_DELETED, 4, chain=chain)
    assert problem.message == f"chain {chain}: the newest records after 3 were deleted"


def test_a_rewritten_middle_record_with_a_recomputed_hash_breaks_the_next_link(engine: Engine, chain: int) -> None:
    log = SqlAuditLog(engine, chain)
    fill(log, 5)
    tamper(engine, update(AuditEventRow).where(at(chain, 2)).values(reason="forged"))
    tamper(engine, update(AuditEventRow).where(at(chain, 2)).values(hash=forged_hash(engine, chain, 2)))
    assert log.verify() == ChainProblem(ProblemKind.BROKEN_LINK, 3, row_id(engine, chain, 3), chain)


def test_replacing_the_newest_record_consistently_but_not_the_head_is_found(engine: Engine, chain: int) -> None:
    log = SqlAuditLog(engine, chain)
    fill(log, 4)
    tamper(engine, update(AuditEventRow).where(at(chain, 4)).values(kind="logged-out"))
    tamper(engine, update(AuditEventRow).where(at(chain, 4)).values(hash=forged_hash(engine, chain, 4)))
    assert log.verify() == ChainProblem(ProblemKind.HEAD_MISMATCH, 4, chain=chain)


def test_reordered_records_are_found(engine: Engine, chain: int) -> None:
    log = SqlAuditLog(engine, chain)
    fill(log, 4)
    tamper(engine,
           update(AuditEventRow).where(at(chain, 2)).values(seq=-2),
           update(AuditEventRow).where(at(chain, 3)).values(seq=2),
           update(AuditEventRow).where(at(chain, -2)).values(seq=3))
    # its hash was made as record 3
    assert log.verify() == ChainProblem(ProblemKind.EDITED, 2, row_id(engine, chain, 2), chain)


def test_a_record_slipped_in_above_the_head_is_found(engine: Engine, chain: int) -> None:
    log = SqlAuditLog(engine, chain)
    fill(log, 2)
    head = log.head(chain)
    assert head is not None
    digest = record_hash(head.hash, 3, AT, "login-succeeded", None, None, None, None, None)
    tamper(engine, insert(AuditEventRow).values(at=AT, kind="login-succeeded", chain=chain, seq=3,
                                                prev_hash=head.hash, hash=digest))
    assert log.verify() == ChainProblem(ProblemKind.BEYOND_HEAD, 3, chain=chain)


def test_a_missing_head_is_reported_and_stops_appends(engine: Engine) -> None:
    log = SqlAuditLog(engine, 1)
    fill(log, 1)
    tamper(engine, delete(AuditChainHeadRow))
    assert log.check().problems == tuple(ChainProblem(ProblemKind.NO_HEAD, 0, chain=n) for n in range(1, 9))
    assert log.verify() is not None and log.verify() == ChainProblem(ProblemKind.NO_HEAD, 0)
    with pytest.raises(AuditChainHeadMissing):
        fill(log, 1)


def test_one_deleted_head_row_is_named_and_the_others_still_verify(engine: Engine, chain: int) -> None:
    log = SqlAuditLog(engine, chain)
    fill(log, 3)
    tamper(engine, delete(AuditChainHeadRow).where(AuditChainHeadRow.id == chain))
    check = log.check()
    assert check.problems == (ChainProblem(ProblemKind.NO_HEAD, 0, chain=chain),)
    assert check.problems[0].message == f"chain {chain}: the chain head is missing"
    assert check.head is None and len(check.heads) == 7


@pytest.mark.parametrize(("records", "edited"), [(6, None), (7, 7), (7, 5), (6, 3)])
def test_verification_reads_in_batches(engine: Engine, monkeypatch: pytest.MonkeyPatch, chain: int, records: int,
                                       edited: int | None) -> None:
    monkeypatch.setattr(storage_audit, "VERIFY_BATCH", 2)
    log = SqlAuditLog(engine, chain)
    fill(log, records)
    if edited is None:
        assert log.verify() is None
        return
    tamper(engine, update(AuditEventRow).where(at(chain, edited)).values(reason="x"))
    assert log.verify() == ChainProblem(ProblemKind.EDITED, edited, row_id(engine, chain, edited), chain)


def test_events_lists_the_newest_first_and_filters_by_account(engine: Engine) -> None:
    log = SqlAuditLog(engine, 1)
    fill(log, 6)  # accounts acc-0, acc-1, acc-2, acc-0, acc-1, acc-2
    assert [r.seq for r in log.events(limit=4)] == [6, 5, 4, 3]
    newest = log.events(account_id="acc-1")
    assert [(r.seq, r.account_id, r.reason) for r in newest] == [(5, "acc-1", "r4"), (2, "acc-1", "r1")]
    assert newest[0].computed_hash() == newest[0].hash
    assert log.events(account_id="nobody") == []


def test_events_are_newest_first_across_chains(engine: Engine) -> None:
    """Listing orders by insertion, not by ``seq`` (which each chain counts on its own)."""
    for n, chain in enumerate([3, 3, 1, 7, 3]):
        SqlAuditLog(engine, chain).record(AuditEvent(AuditKind.LOGIN_SUCCEEDED, AT, reason=f"e{n}"))
    assert [(r.chain, r.seq, r.reason) for r in SqlAuditLog(engine).events(limit=10)] == [
        (3, 3, "e4"), (7, 1, "e3"), (1, 1, "e2"), (3, 2, "e1"), (3, 1, "e0")]
    assert SqlAuditLog(engine).verify() is None


# --- the migrations chain the records they find -------------------------------------------------------------------


def test_migration_chains_existing_records_in_id_order(database_url: str) -> None:
    """0004 chains the records it finds; 0023 keeps them as chain 1, unchanged, and adds seven empty chains."""
    upgrade(database_url, "0003")
    engine = create_engine_for(database_url)
    try:
        with engine.begin() as connection:  # the columns of 0003 only
            for i in range(3):
                connection.execute(insert(AuditEventRow).values(
                    at=AT + timedelta(minutes=i), kind="login-failed", account_id=None if i else "acc",
                    reason="Zoë" if i == 1 else None))
        upgrade(database_url, "0022")
        with engine.connect() as connection:
            before = connection.execute(select(AuditChainHeadRow.seq, AuditChainHeadRow.hash)).one()
        upgrade(database_url)
        log = SqlAuditLog(engine, 1)
        assert log.verify() is None
        assert log.head(1) == ChainHead(3, before.hash, 1) and before.seq == 3
        assert log.heads()[1:] == tuple(ChainHead(0, genesis_hash(n), n) for n in range(2, 9))
        with engine.connect() as connection:
            rows = connection.execute(select(AuditEventRow).order_by(AuditEventRow.id)).all()
        assert [(r.chain, r.seq) for r in rows] == [(1, 1), (1, 2), (1, 3)] and rows[1].reason == "Zoë"
        assert rows[0].hash == record_hash(GENESIS_HASH, 1, AT, "login-failed", "acc", None, None, None, None)
        fill(log, 1)  # appends continue the migrated chain
        assert log.verify() is None and log.head(1) == ChainHead(4, log.events(limit=1)[0].hash, 1)
        fill(SqlAuditLog(engine, 2), 1)
        assert log.verify() is None
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> None:
    engine = create_engine_for(url)
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), revision)
    finally:
        engine.dispose()


def test_migration_of_an_empty_log_starts_empty_chains_and_downgrades(database_url: str) -> None:
    upgrade(database_url)
    engine = create_engine_for(database_url)
    try:
        log = SqlAuditLog(engine)
        assert log.heads() == tuple(ChainHead(0, genesis_hash(n), n) for n in range(1, 9))
        fill(SqlAuditLog(engine, 1), 2)
        downgrade(database_url, "0022")  # only chain 1 holds records: they are the one chain again
        with engine.connect() as connection:
            assert connection.execute(select(AuditChainHeadRow.id, AuditChainHeadRow.seq)).all() == [(1, 2)]
        upgrade(database_url)
        assert log.verify() is None
        fill(SqlAuditLog(engine, 4), 1)
        with pytest.raises(RuntimeError, match="chains other than 1"):
            downgrade(database_url, "0022")
    finally:
        engine.dispose()
