"""Hash-chained audit appends and verification per second on this machine.

    python bench/audit_bench.py [--records 2000] [--seconds 30] [--threads 8] [--database-url URL]

Appends one event at a time through ``SqlAuditLog.record`` (a chain's head row locked, record and head written in
one transaction) from 1 thread, then from ``--threads`` threads at once (each with its own engine, as broker
instances would be: on PostgreSQL they spread over the parallel chains, issue 21), and, for comparison, plain
single-row inserts into the same table's shape without the chain; then verifies every chain. Loops are bounded by
count and time. Default: a fresh SQLite file; with ``--database-url`` a throwaway PostgreSQL schema.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, func, insert, select

from broker.core.audit import AuditEvent, AuditKind
from broker.core.model import utcnow
from broker.storage import SqlAuditLog, create_engine_for, upgrade
from broker.storage.tables import AuditEventRow
from tests.databases import postgres_schema

#: makes the audit log to measure (``bench`` can be given another, e.g. an older version's, to compare)
LogFactory = Callable[[Engine], SqlAuditLog]


def appends_per_second(url: str, threads: int, records: int, seconds: float,
                       make_log: LogFactory = SqlAuditLog) -> tuple[int, float]:
    """``records`` appends in all from ``threads`` threads, each with its own engine, bounded by ``seconds``:
    (appends done, appends per second)."""
    start, done, lock = threading.Barrier(threads + 1), [0], threading.Lock()
    deadline = [0.0]
    failures: list[BaseException] = []

    def appender(worker: int) -> None:
        engine = create_engine_for(url)
        try:
            log = make_log(engine)
            start.wait()
            for i in range(worker, records, threads):
                if time.monotonic() > deadline[0]:
                    return
                log.record(AuditEvent(AuditKind.LOGIN_SUCCEEDED, utcnow(), account_id=f"acc-{i % 97}",
                                      upstream="op", downstream="https://sp.city.example/", reason="upstream"))
                with lock:
                    done[0] += 1
        except BaseException as exc:  # reported after the join: a bench must not hide a broken append
            failures.append(exc)
        finally:
            engine.dispose()

    workers = [threading.Thread(target=appender, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    deadline[0] = time.monotonic() + seconds
    started = time.perf_counter()
    start.wait()
    for worker in workers:
        worker.join(timeout=seconds + 60)
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"an append failed: {failures[0]!r}")
    return done[0], done[0] / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=8, help="appenders at once in the second run (default 8)")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    bench(args.records, args.seconds, max(args.threads, 1), args.database_url)


def bench(records: int, seconds: float, threads: int, database_url: str | None,
          make_log: LogFactory = SqlAuditLog) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        database = postgres_schema(database_url) if database_url else iter(
            [f"sqlite:///{Path(scratch) / 'audit.db'}"])
        url = next(database)
        upgrade(url)
        engine = create_engine_for(url)
        try:
            done, chained = appends_per_second(url, 1, records, seconds, make_log)
            many_done, many = appends_per_second(url, threads, records, seconds, make_log)

            plain_table = Table("bench_plain", MetaData(), Column("id", Integer, primary_key=True),
                                Column("at", DateTime(timezone=True)), Column("kind", String(64)),
                                Column("account_id", String(36)), Column("reason", String(1024)))
            plain_table.create(engine)
            deadline, started, plain_done = time.monotonic() + seconds, time.perf_counter(), 0
            while plain_done < records and time.monotonic() < deadline:
                with engine.begin() as connection:
                    connection.execute(insert(plain_table).values(at=utcnow(), kind="login-succeeded",
                                                                  account_id="acc", reason="upstream"))
                plain_done += 1
            plain = plain_done / (time.perf_counter() - started)

            with engine.connect() as connection:
                chains = connection.execute(select(func.count(func.distinct(AuditEventRow.chain)))).scalar_one()
            started = time.perf_counter()
            problem = SqlAuditLog(engine).verify()
            verify_rate = (done + many_done) / (time.perf_counter() - started)
            if problem is not None:
                raise SystemExit(f"the chain does not verify: {problem.message}")
        finally:
            engine.dispose()
        for _ in database:  # drops the PostgreSQL schema
            pass
    where = url.split("@")[-1].split("?")[0]
    print(f"database: {where}")
    print(f"chained appends, 1 thread: {done} at {chained:,.0f}/s; {threads} threads: {many_done} at {many:,.0f}/s "
          f"(records in {chains} chains)")
    print(f"plain inserts: {plain_done} at {plain:,.0f}/s; verify: {verify_rate:,.0f} records/s (every chain intact)")


if __name__ == "__main__":
    main()
