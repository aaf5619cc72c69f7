"""The rollup: audit records after the watermark, in batches, into the aggregates beside the audit trail
(``broker.storage.analytics_tables``). ``broker analytics rollup`` runs it, and so does ``broker worker`` every few
minutes (``PeriodicRollup``).

The audit trail is parallel chains (``broker.core.audit_chain.AUDIT_CHAINS``), each with its own ``seq``, so there
is a watermark per chain (``analytics_watermark`` row ``id`` = chain). Each batch is one transaction: lock the
watermarks, read up to ``BATCH`` audit records after each (its chain's ``seq`` order), load what the tables hold
about their accounts, add the counts (in time order), write, move each watermark to its chain's last ``seq`` in the
batch, commit. So a record is counted exactly once however often, and by however many workers at once, it runs:

- PostgreSQL: ``SELECT ... FOR UPDATE`` on the watermark rows, in ``id`` order; a second rollup waits there and
  then reads the watermarks the first committed (READ COMMITTED reads the newest row version after the wait).
- SQLite: the transaction starts with a write to the watermark rows, which takes the database's write lock
  (``broker.storage.db``): rollups run one after the other.

Audit records are only ever appended, each committed with its chain's head that names its ``seq``
(``SqlAuditLog``), so the records after a chain's watermark that a batch sees are a gap-free run; a record
committing meanwhile has a higher ``seq`` in its chain and is read by the next batch.

Why this stays fast at 10 million audit records: a run reads only the records after the watermarks, through the
unique index on (``chain``, ``seq``) (a range scan from each watermark), in batches of bounded size, and touches
only the rows of the accounts and days in the batch (primary-key lookups). No query of ``broker.analytics.queries``
reads the audit trail: daily counts are days x dimensions rows, and distinct counts read the days accounts signed in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, String, Table, any_, bindparam, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from broker.analytics.batch import AccountState, AuditRecord, Batch
from broker.core.audit_chain import AUDIT_CHAINS, CHAIN_IDS
from broker.storage.analytics_tables import (
    AnalyticsAccountAppRow,
    AnalyticsAccountDayRow,
    AnalyticsAccountRow,
    AnalyticsAccountUpstreamRow,
    AnalyticsDailyRow,
    AnalyticsWatermarkRow,
)
from broker.storage.tables import AuditEventRow

log = logging.getLogger(__name__)

#: a run that catches up refreshes the planner's statistics after its 2nd batch and every this many batches
ANALYZE_EVERY = 20
#: audit records per batch (one transaction)
BATCH = 5000
#: how many keys one ``IN (...)`` holds on SQLite
_CHUNK = 500
#: how often ``broker worker`` rolls up, and how long one go may last before it goes back to sending messages
EVERY = timedelta(minutes=5)
WORKER_BUDGET = timedelta(seconds=10)
_events = AuditEventRow.__table__
_watermark: Table = AnalyticsWatermarkRow.__table__  # type: ignore[assignment]
_daily: Table = AnalyticsDailyRow.__table__  # type: ignore[assignment]
_accounts: Table = AnalyticsAccountRow.__table__  # type: ignore[assignment]
_days: Table = AnalyticsAccountDayRow.__table__  # type: ignore[assignment]
_upstreams: Table = AnalyticsAccountUpstreamRow.__table__  # type: ignore[assignment]
_apps: Table = AnalyticsAccountAppRow.__table__  # type: ignore[assignment]
T = TypeVar("T")


@dataclass(frozen=True)
class RollupReport:
    """What a run did: audit records counted, batches committed, the watermark it left, and whether it reached
    the end of the audit trail (False: stopped by its time budget or batch limit)."""

    records: int
    batches: int
    watermark: int
    caught_up: bool


def rollup(engine: Engine, now: datetime, *, batch: int = BATCH, max_batches: int | None = None,
           budget: timedelta | None = None) -> RollupReport:
    """Roll up the audit records after the watermark, ``batch`` at a time, until none is left, or ``max_batches``
    were committed, or ``budget`` has passed (the batch in progress finishes). ``now``: when, for the watermark."""
    started, records, batches, watermark = time.monotonic(), 0, 0, 0
    while True:
        with engine.begin() as connection:
            counted, watermark, full = _roll_batch(connection, now, batch)
        records += counted
        batches += 1 if counted else 0
        if not full:
            return RollupReport(records, batches, watermark, caught_up=True)
        if batches == 2 or batches % ANALYZE_EVERY == 0:
            _refresh_statistics(engine)
        out_of_time = budget is not None and time.monotonic() - started >= budget.total_seconds()
        if (max_batches is not None and batches >= max_batches) or out_of_time:
            return RollupReport(records, batches, watermark, caught_up=False)


def _refresh_statistics(engine: Engine) -> None:
    """PostgreSQL's statistics of the account tables, while a run catches up with a backlog: a plan made when they
    were nearly empty (the driver prepares a statement after a few runs and keeps its generic plan) scans the whole
    table for each batch's accounts instead of using its primary key, and slows the run down as the tables grow;
    ``ANALYZE`` samples a bounded number of rows and makes those plans be made again. Autovacuum would do it in
    time on most servers; a first rollup of millions of records should not wait for it. Nothing on SQLite."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE " + ", ".join(t.name for t in (_accounts, _days, _upstreams, _apps)))


class PeriodicRollup:
    """The rollup in ``broker worker``'s loop: when due, one run of at most ``budget``; due again at the next pass
    while records are left, else after ``every``. A failure is logged and tried again after ``every``: it never
    stops the delivery of messages."""

    def __init__(self, every: timedelta = EVERY, budget: timedelta = WORKER_BUDGET, batch: int = BATCH) -> None:
        self._every, self._budget, self._batch = every, budget, batch
        self._due: datetime | None = None

    def run_if_due(self, engine: Engine, now: datetime) -> RollupReport | None:
        if self._due is not None and now < self._due:
            return None
        try:
            report = rollup(engine, now, batch=self._batch, budget=self._budget)
        except Exception as exc:  # a bug or an outage here must not stop the delivery loop
            # the type only for a database error (its message quotes the statement and the batch's account ids)
            log.warning("analytics: rollup failed (%s); next try in %s", type(exc).__name__, self._every,
                        exc_info=not isinstance(exc, SQLAlchemyError))
            self._due = now + self._every
            return None
        self._due = now if not report.caught_up else now + self._every
        if report.records:
            log.info("analytics: rolled up %d audit records, watermark %d", report.records, report.watermark)
        return report


def _roll_batch(connection: Connection, now: datetime, size: int) -> tuple[int, int, bool]:
    """One batch in the caller's transaction: (records counted, the watermarks' sum after it, whether a chain had
    more than ``size`` records left). Each audit chain (``broker.core.audit_chain.AUDIT_CHAINS``) has its own
    watermark and gives up to ``size`` records after it, in its ``seq`` order, so what is counted of each chain
    is always a gap-free run from its start; the batch counts them in time order."""
    after = _lock_watermarks(connection)
    records: list[tuple[int, AuditRecord]] = []
    full = False
    for chain, seq in after.items():
        rows = connection.execute(
            select(_events.c.seq, _events.c.at, _events.c.kind, _events.c.account_id, _events.c.upstream,
                   _events.c.downstream, _events.c.reason)
            .where(_events.c.chain == chain, _events.c.seq > seq).order_by(_events.c.seq).limit(size)
        ).all()
        full = full or len(rows) == size
        records += [(chain, AuditRecord(r.seq, r.at, r.kind, r.account_id, r.upstream, r.downstream, r.reason))
                    for r in rows]
        if rows:
            after[chain] = rows[-1].seq
            connection.execute(update(_watermark).where(_watermark.c.id == chain)
                               .values(seq=rows[-1].seq, rolled_at=now))
    if not records:
        return 0, sum(after.values()), False
    records.sort(key=lambda item: (item[1].at, item[0], item[1].seq))
    in_order = [record for _, record in records]
    batch = _load(connection, in_order)
    for record in in_order:
        batch.add(record)
    _write(connection, batch)
    return len(in_order), sum(after.values()), full


def _lock_watermarks(connection: Connection) -> dict[int, int]:
    """Every chain's watermark, locked until the transaction ends (rows are made if a hand removed them)."""
    if connection.dialect.name == "sqlite":  # the write lock first: reads below see the last commit
        connection.execute(update(_watermark).values(seq=_watermark.c.seq))
    query = select(_watermark.c.id, _watermark.c.seq).order_by(_watermark.c.id).with_for_update()
    found = {int(r.id): int(r.seq) for r in connection.execute(query)}
    if len(found) < AUDIT_CHAINS:
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        missing = [{"id": c, "seq": 0} for c in CHAIN_IDS if c not in found]
        connection.execute(dialect.insert(_watermark).values(missing).on_conflict_do_nothing())
        found = {int(r.id): int(r.seq) for r in connection.execute(query)}
    return found


def _load(connection: Connection, records: Sequence[AuditRecord]) -> Batch:
    """What the tables hold about the accounts of ``records``: their rows, their sign-in days among the batch's
    days, their upstreams and apps."""
    ids = sorted({r.account_id for r in records if r.account_id})
    days = sorted({r.day for r in records})
    accounts = {row.account_id: AccountState(row.account_id, row.first_day, row.last_sign_in, row.upstreams,
                                             row.apps, row.authenticators, row.second_factor, row.deleted)
                for row in _rows_for(connection, _accounts, _accounts.c.account_id, ids)}
    # by the primary key (day, account_id): the batch's few days, then its accounts
    signed_in = {(row.day, row.account_id)
                 for row in _rows_for(connection, _days, _days.c.account_id, ids, _days.c.day.in_(days))}
    upstreams = {(row.account_id, row.upstream)
                 for row in _rows_for(connection, _upstreams, _upstreams.c.account_id, ids)}
    apps = {(row.account_id, row.downstream) for row in _rows_for(connection, _apps, _apps.c.account_id, ids)}
    return Batch(accounts, signed_in, upstreams, apps)


def _rows_for(connection: Connection, table: Table, column: Any, keys: Sequence[str], *also: Any) -> Iterator[Any]:
    """The rows whose ``column`` is one of ``keys``: one query with an array parameter on PostgreSQL (its text
    does not change with the keys, so it is parsed once), ``IN`` lists in chunks on SQLite."""
    if connection.dialect.name == "postgresql":
        keys_param = bindparam("keys", list(keys), type_=postgresql.ARRAY(String()))
        yield from connection.execute(select(table).where(*also, column == any_(keys_param)))
        return
    for chunk in _chunks(keys, _CHUNK):
        yield from connection.execute(select(table).where(*also, column.in_(chunk)))


@dataclass(frozen=True)
class _OnConflict:
    """What an insert does with a row whose ``keys`` exist: ``add`` its columns to the stored ones, or ``replace``
    them."""

    keys: tuple[str, ...]
    add: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()


_ADD_COUNT = _OnConflict(("metric", "day", "upstream", "downstream", "detail"), add=("count",))
_REPLACE_ACCOUNT = _OnConflict(("account_id",), replace=tuple(c.name for c in _accounts.columns
                                                             if c.name != "account_id"))


def _write(connection: Connection, batch: Batch) -> None:
    _put(connection, _daily, [
        {"metric": k.metric.value, "day": k.day, "upstream": k.upstream, "downstream": k.downstream,
         "detail": k.detail, "count": n} for k, n in sorted(batch.counts.items(), key=_daily_order)], _ADD_COUNT)
    changed = [_account_values(batch.accounts[a]) for a in sorted(batch.touched)]
    _put(connection, _accounts, [v for v in changed if v["account_id"] in batch.new_accounts])
    _put(connection, _accounts, [v for v in changed if v["account_id"] not in batch.new_accounts], _REPLACE_ACCOUNT)
    _put(connection, _days, [{"day": d, "account_id": a} for d, a in batch.new_days])
    _put(connection, _upstreams, [{"account_id": a, "upstream": u} for a, u in batch.new_upstreams])
    _put(connection, _apps, [{"account_id": a, "downstream": d} for a, d in batch.new_apps])


def _put(connection: Connection, table: Table, rows: list[dict[str, Any]], conflict: _OnConflict | None = None) -> None:
    """Insert ``rows``. PostgreSQL: one ``INSERT ... SELECT FROM unnest(arrays)`` (one statement, one parse, one
    round trip, whatever the number of rows); SQLite: the driver's ``executemany`` (in process: nothing to save)."""
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        _put_arrays(connection, table, rows, conflict)
        return
    statement = sqlite.insert(table)
    if conflict is not None:
        excluded = statement.excluded
        statement = statement.on_conflict_do_update(index_elements=list(conflict.keys), set_={
            **{c: table.c[c] + excluded[c] for c in conflict.add}, **{c: excluded[c] for c in conflict.replace}})
    connection.execute(statement, rows)


def _put_arrays(connection: Connection, table: Table, rows: list[dict[str, Any]], conflict: _OnConflict | None) -> None:
    """The PostgreSQL form of ``_put``; identifiers come from the table definitions, values are bound."""
    quote, columns = connection.dialect.identifier_preparer.quote, list(rows[0])
    arrays = ", ".join(f"CAST(:{c} AS {table.c[c].type.compile(dialect=connection.dialect)}[])" for c in columns)
    sql = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608 - names
           f"SELECT * FROM unnest({arrays})")
    if conflict is not None:
        sets = [f"{quote(c)} = {quote(table.name)}.{quote(c)} + EXCLUDED.{quote(c)}" for c in conflict.add]
        sets += [f"{quote(c)} = EXCLUDED.{quote(c)}" for c in conflict.replace]
        sql += f" ON CONFLICT ({', '.join(quote(k) for k in conflict.keys)}) DO UPDATE SET {', '.join(sets)}"
    connection.execute(text(sql), {c: [row[c] for row in rows] for c in columns})


def _account_values(state: AccountState) -> dict[str, Any]:
    return {"account_id": state.account_id, "first_day": state.first_day, "last_sign_in": state.last_sign_in,
            "upstreams": state.upstreams, "apps": state.apps, "authenticators": state.authenticators,
            "second_factor": state.second_factor, "deleted": state.deleted}


def _daily_order(item: tuple[Any, int]) -> tuple[str, date, str, str, str]:
    """A fixed order of upserts, so that two writers could never deadlock on the same rows."""
    key = item[0]
    return key.metric.value, key.day, key.upstream, key.downstream, key.detail


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
