"""Hash-chained audit appends and verification per second on this machine.

    python bench/audit_bench.py [--records 2000] [--seconds 30] [--database-url URL]

Appends one event at a time through ``SqlAuditLog.record`` (head row locked, record and head written in one
transaction) and, for comparison, plain single-row inserts into the same table's shape without the chain;
then verifies the whole chain. Loops are bounded by count and time. Default: a fresh SQLite file; with
``--database-url`` a throwaway PostgreSQL schema.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, insert

from broker.core.audit import AuditEvent, AuditKind
from broker.core.model import utcnow
from broker.storage import SqlAuditLog, create_engine_for, upgrade
from tests.databases import postgres_schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        database = postgres_schema(args.database_url) if args.database_url else iter(
            [f"sqlite:///{Path(scratch) / 'audit.db'}"])
        url = next(database)
        upgrade(url)
        engine = create_engine_for(url)
        try:
            log = SqlAuditLog(engine)
            deadline, started, done = time.monotonic() + args.seconds, time.perf_counter(), 0
            while done < args.records and time.monotonic() < deadline:
                log.record(AuditEvent(AuditKind.LOGIN_SUCCEEDED, utcnow(), account_id=f"acc-{done % 97}",
                                      upstream="op", downstream="https://sp.city.example/", reason="upstream"))
                done += 1
            chained = done / (time.perf_counter() - started)

            plain_table = Table("bench_plain", MetaData(), Column("id", Integer, primary_key=True),
                                Column("at", DateTime(timezone=True)), Column("kind", String(64)),
                                Column("account_id", String(36)), Column("reason", String(1024)))
            plain_table.create(engine)
            deadline, started, plain_done = time.monotonic() + args.seconds, time.perf_counter(), 0
            while plain_done < args.records and time.monotonic() < deadline:
                with engine.begin() as connection:
                    connection.execute(insert(plain_table).values(at=utcnow(), kind="login-succeeded",
                                                                  account_id="acc", reason="upstream"))
                plain_done += 1
            plain = plain_done / (time.perf_counter() - started)

            started = time.perf_counter()
            problem = log.verify()
            verify_rate = done / (time.perf_counter() - started)
            if problem is not None:
                raise SystemExit(f"the chain does not verify: {problem.message}")
        finally:
            engine.dispose()
        for _ in database:  # drops the PostgreSQL schema
            pass
    where = url.split("@")[-1].split("?")[0]
    print(f"database: {where}")
    print(f"chained appends: {done} at {chained:,.0f}/s; plain inserts: {plain_done} at {plain:,.0f}/s; "
          f"verify: {verify_rate:,.0f} records/s (chain intact)")


if __name__ == "__main__":
    main()
