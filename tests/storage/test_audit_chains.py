"""The audit trail as parallel chains (issue 21): appends do not wait for each other on PostgreSQL (a chain held by
another transaction is skipped), no chain forks under concurrent appenders, records moved between chains or put in
a chain the broker does not keep are found, and a saved anchor catches a consistent rewrite of a tail and its head.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, Executable, delete, event, insert, select, text, update

from broker.core.audit import AuditEvent, AuditKind
from broker.core.audit_chain import ChainHead, ChainProblem, ProblemKind, genesis_hash, parse_anchor, record_hash
from broker.storage import SqlAuditLog, create_engine_for, upgrade
from broker.storage.audit import process_chain
from broker.storage.tables import AuditChainHeadRow, AuditEventRow
from tests.databases import POSTGRES_ENV, postgres_schema

AT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)  # any time: the hash covers it as given


def fill(log: SqlAuditLog, n: int, reason: str = "r") -> None:
    for i in range(n):
        log.record(AuditEvent(AuditKind.LOGIN_SUCCEEDED, AT + timedelta(seconds=i), account_id=f"acc-{i}",
                              reason=f"{reason}{i}"))


def tamper(engine: Engine, *statements: Executable) -> None:
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(statement)


def chains_of(engine: Engine) -> dict[int, list[int]]:
    """Each chain's ``seq`` values, in order."""
    with engine.connect() as connection:
        rows = connection.execute(select(AuditEventRow.chain, AuditEventRow.seq)
                                  .order_by(AuditEventRow.chain, AuditEventRow.seq)).all()
    found: dict[int, list[int]] = {}
    for chain, seq in rows:
        found.setdefault(chain, []).append(seq)
    return found


# --- records in the wrong chain -------------------------------------------------------------------------------


def test_a_record_moved_to_another_chain_is_found_in_both(engine: Engine) -> None:
    fill(SqlAuditLog(engine, 2), 3)
    fill(SqlAuditLog(engine, 5), 3)
    moved = (AuditEventRow.chain == 2) & (AuditEventRow.seq == 2)
    tamper(engine, update(AuditEventRow).where(moved).values(chain=5, seq=4))
    problems = SqlAuditLog(engine).check().problems
    assert [(p.chain, p.kind, p.seq) for p in problems] == [(2, ProblemKind.MISSING, 2),
                                                            (5, ProblemKind.BEYOND_HEAD, 4)]
    assert problems[0].message == "chain 2: record 2 is missing (deleted)"


def test_a_whole_chain_passed_off_as_another_is_found_by_its_genesis(engine: Engine) -> None:
    """Chain 2's records and head moved to the empty chain 7, chain 2's head reset to empty: every record and
    head is self-consistent, but chain 7's first record follows chain 2's genesis value."""
    log = SqlAuditLog(engine, 2)
    fill(log, 3)
    head = log.head(2)
    assert head is not None
    tamper(engine, update(AuditEventRow).where(AuditEventRow.chain == 2).values(chain=7),
           update(AuditChainHeadRow).where(AuditChainHeadRow.id == 7).values(seq=head.seq, hash=head.hash),
           update(AuditChainHeadRow).where(AuditChainHeadRow.id == 2).values(seq=0, hash=genesis_hash(2)))
    problem = log.verify()
    assert problem is not None and (problem.chain, problem.kind, problem.seq) == (7, ProblemKind.BROKEN_LINK, 1)


@pytest.mark.parametrize("chain", [0, 9])
def test_records_in_a_chain_the_broker_does_not_keep_are_found(engine: Engine, chain: int) -> None:
    log = SqlAuditLog(engine)
    fill(log, 2)
    digest = record_hash(genesis_hash(chain), 1, AT, "login-succeeded", None, None, None, None, None)
    tamper(engine, insert(AuditEventRow).values(at=AT, kind="login-succeeded", chain=chain, seq=1,
                                                prev_hash=genesis_hash(chain), hash=digest))
    assert log.check().problems == (ChainProblem(ProblemKind.UNKNOWN_CHAIN, 1, chain=chain),)


# --- the anchor an operator keeps -------------------------------------------------------------------------------


def rewrite_tail(engine: Engine, chain: int, first: int) -> None:
    """Rewrite chain ``chain`` from record ``first`` on with recomputed hashes and move its head: consistent."""
    with engine.begin() as connection:
        rows = connection.execute(select(AuditEventRow).where(AuditEventRow.chain == chain, AuditEventRow.seq >= first)
                                  .order_by(AuditEventRow.seq)).all()
        prev = connection.execute(select(AuditEventRow.hash).where(
            AuditEventRow.chain == chain, AuditEventRow.seq == first - 1)).scalar_one()
        for r in rows:
            digest = record_hash(prev, r.seq, r.at, r.kind, r.account_id, r.upstream, r.downstream, "nothing",
                                 r.reference)
            connection.execute(update(AuditEventRow).where(AuditEventRow.id == r.id)
                               .values(reason="nothing", prev_hash=prev, hash=digest))
            prev = digest
        connection.execute(update(AuditChainHeadRow).where(AuditChainHeadRow.id == chain).values(hash=prev))


def test_the_anchor_catches_a_consistent_rewrite_of_a_tail_and_its_head(engine: Engine) -> None:
    log = SqlAuditLog(engine, 3)
    fill(log, 5)
    fill(SqlAuditLog(engine, 1), 2)
    saved = log.check()
    assert saved.problems == () and saved.anchor.startswith(f"1:2:{log.heads()[0].hash},2:0:{genesis_hash(2)},")
    anchor = parse_anchor(saved.anchor)
    fill(log, 2)  # appends after the anchor was saved keep it valid
    assert log.check(anchor).problems == ()

    rewrite_tail(engine, 3, 4)
    assert log.verify() is None  # the chain alone cannot tell
    problems = log.check(anchor).problems
    assert problems == (ChainProblem(ProblemKind.ANCHOR_MISMATCH, 5, chain=3),)
    assert problems[0].message.startswith("chain 3: record 5 is not the one the saved anchor names")


def test_the_anchor_catches_a_cut_tail_with_its_head_set_back(engine: Engine) -> None:
    log = SqlAuditLog(engine, 6)
    fill(log, 4)
    anchor = parse_anchor(log.check().anchor)
    kept = log.events(limit=3)[-1]  # record 2
    tamper(engine, delete(AuditEventRow).where(AuditEventRow.chain == 6, AuditEventRow.seq > 2),
           update(AuditChainHeadRow).where(AuditChainHeadRow.id == 6).values(seq=2, hash=kept.hash))
    assert log.verify() is None
    assert log.check(anchor).problems == (ChainProblem(ProblemKind.ANCHOR_MISMATCH, 4, chain=6),)


# --- appending -------------------------------------------------------------------------------------------------


def test_an_append_is_three_statements_as_with_one_chain(engine: Engine) -> None:
    """Lock and read a head, insert the record, move the head: no more round trips than the single chain took."""
    log, statements = SqlAuditLog(engine), list[str]()
    fill(log, 1)

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", count)
    try:
        fill(log, 1)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert statements == (["SELECT", "INSERT", "UPDATE"] if engine.dialect.name == "postgresql"
                          else ["UPDATE", "INSERT", "UPDATE"])


@pytest.mark.parametrize("chain", [0, 9])
def test_a_chain_the_broker_does_not_keep_cannot_be_chosen(engine: Engine, chain: int) -> None:
    with pytest.raises(ValueError, match=r"1\.\.8"):
        SqlAuditLog(engine, chain)


# --- concurrency ----------------------------------------------------------------------------------------------

THREADS, EACH = 8, 25


def test_concurrent_appenders_never_fork_the_chain(database_url: str) -> None:
    """Eight appenders, each with its own engine (as separate broker instances would be), 25 records each; on
    PostgreSQL they spread over the chains as heads are found locked, each chain stays gap-free and intact."""
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
            per_worker = connection.execute(text(
                "SELECT account_id, count(*) FROM audit_events GROUP BY account_id")).all()
        chains = chains_of(engine)
        assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in chains.values())
        assert sum(len(seqs) for seqs in chains.values()) == THREADS * EACH
        assert sorted(per_worker) == [(f"w{w}", EACH) for w in range(THREADS)]
        log = SqlAuditLog(engine)
        assert log.verify() is None
        assert {h.chain: h.seq for h in log.heads() if h.seq} == {c: len(s) for c, s in chains.items()}
    finally:
        engine.dispose()


postgres_only = pytest.mark.skipif(not os.environ.get(POSTGRES_ENV), reason=f"needs {POSTGRES_ENV}")


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    for url in postgres_schema(os.environ[POSTGRES_ENV]):
        upgrade(url)
        engine = create_engine_for(url)
        yield engine
        engine.dispose()


def append_in_thread(engine: Engine) -> threading.Thread:
    log = SqlAuditLog(engine)  # this process's own chain first, as the broker's
    worker = threading.Thread(target=fill, args=(log, 1), daemon=True)
    worker.start()
    return worker


@postgres_only
def test_an_append_does_not_wait_for_a_chain_another_transaction_holds(pg_engine: Engine) -> None:
    """THE point of issue 21: another transaction holds chain 1's head (as the old single-chain append did for
    every login) and this process's own chain; an append still completes, in another chain."""
    held = sorted({1, process_chain()})
    with pg_engine.connect() as holder:
        holder.execute(select(AuditChainHeadRow.id).where(AuditChainHeadRow.id.in_(held)).with_for_update()).all()
        worker = append_in_thread(pg_engine)
        worker.join(timeout=10)
        done = not worker.is_alive()
        holder.rollback()  # release the lock before asserting, so a failing run does not hang
    worker.join(timeout=10)
    assert done, "the append waited for a chain head another transaction holds"
    used = Counter(chain for chain, seqs in chains_of(pg_engine).items() for _ in seqs)
    assert sum(used.values()) == 1 and not set(used) & set(held)
    assert SqlAuditLog(pg_engine).verify() is None


@postgres_only
def test_an_append_waits_for_its_own_chain_only_when_every_head_is_held(pg_engine: Engine) -> None:
    with pg_engine.connect() as holder:
        holder.execute(select(AuditChainHeadRow.id).with_for_update()).all()
        worker = append_in_thread(pg_engine)
        worker.join(timeout=1)
        waited = worker.is_alive()
        holder.rollback()
    worker.join(timeout=10)
    assert waited and not worker.is_alive()
    assert chains_of(pg_engine) == {process_chain(): [1]}
    assert SqlAuditLog(pg_engine).head(process_chain()) == ChainHead(1, SqlAuditLog(pg_engine).events()[0].hash,
                                                                    process_chain())
