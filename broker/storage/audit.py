"""The audit log in SQL: ``broker.core.ports.AuditLog``, append-only and hash-chained (``broker.core.audit_chain``).

Appending is serialized across processes and instances, so the chain cannot fork: the first statement of
each append's transaction is an ``UPDATE`` of the single chain-head row. On PostgreSQL that takes the row
lock (as ``SELECT ... FOR UPDATE`` would) until commit, and the head is read after it, so a waiting
appender reads the head its predecessor committed; on SQLite it takes the database's write lock (see
``broker.storage.db``: the transaction starts with its write), so the head is read under that lock too.
The record and the new head are written in the same transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Row, func, insert, select, update

from broker.core.audit import AuditEvent
from broker.core.audit_chain import ChainedRecord, ChainHead, ChainProblem, ProblemKind, chain_hash, verify_chain
from broker.core.ports import AuditLog
from broker.storage.db import session_factory
from broker.storage.tables import AuditChainHeadRow, AuditEventRow

#: rows read per query while verifying: memory stays constant however long the trail
VERIFY_BATCH = 1000
_HEAD_ID = 1


class AuditChainHeadMissing(RuntimeError):
    """The chain-head row is gone (migration 0004 creates it): nothing can be appended until it is restored."""


@dataclass(frozen=True)
class ChainCheck:
    """What ``SqlAuditLog.check`` found: the head the records were checked against, and the first break."""

    head: ChainHead | None
    problem: ChainProblem | None


def _short(value: str | None, limit: int) -> str | None:
    return value[:limit] if value is not None else None


def stored_form(event: AuditEvent) -> AuditEvent:
    """``event`` as it will be stored: attacker-chosen text cut to its column's size, so it cannot bloat the log
    (and the hash covers exactly what is stored)."""
    return dataclasses.replace(
        event, upstream=_short(event.upstream, 255), downstream=_short(event.downstream, 1024),
        reason=_short(event.reason, 1024), reference=_short(event.reference, 64),
    )


def _record(row: Row[Any] | AuditEventRow) -> ChainedRecord:
    return ChainedRecord(
        seq=row.seq, at=row.at, kind=row.kind, account_id=row.account_id, upstream=row.upstream,
        downstream=row.downstream, reason=row.reason, reference=row.reference, prev_hash=row.prev_hash,
        hash=row.hash, id=row.id,
    )


class SqlAuditLog:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)

    def record(self, event: AuditEvent) -> None:
        event = stored_form(event)
        at_head = AuditChainHeadRow.id == _HEAD_ID
        with self._engine.begin() as session:
            # Lock first (the head row on PostgreSQL, the database on SQLite) and read what is locked, in one
            # statement: UPDATE ... RETURNING gives the new seq and the hash it follows while holding the lock.
            taken = session.execute(update(AuditChainHeadRow).where(at_head).values(seq=AuditChainHeadRow.seq + 1)
                                    .returning(AuditChainHeadRow.seq, AuditChainHeadRow.hash)).one_or_none()
            if taken is None:
                raise AuditChainHeadMissing("the audit chain head is missing; run 'broker audit verify'")
            seq, prev_hash = taken
            digest = chain_hash(prev_hash, seq, event)
            session.execute(insert(AuditEventRow).values(
                at=event.at, kind=event.kind.value, account_id=event.account_id, upstream=event.upstream,
                downstream=event.downstream, reason=event.reason, reference=event.reference,
                seq=seq, prev_hash=prev_hash, hash=digest,
            ))
            session.execute(update(AuditChainHeadRow).where(at_head).values(hash=digest))

    def head(self) -> ChainHead | None:
        """The newest record's ``seq`` and hash, as written with it; ``None`` if the head row is gone."""
        with self._engine.connect() as connection:
            return _read_head(connection)

    def verify(self) -> ChainProblem | None:
        """The first break in the audit trail, or ``None`` when it is intact (``check`` tells the head too)."""
        return self.check().problem

    def check(self) -> ChainCheck:
        """Verify every record up to the current head, in ``seq`` order and in batches (constant memory).

        Safe while the broker appends: records are only ever added above the head read at the start, and each
        commits together with the head that names it.
        """
        with self._engine.connect() as connection:
            head = _read_head(connection)
            if head is None:
                return ChainCheck(None, ChainProblem(ProblemKind.NO_HEAD, 0))
            problem = verify_chain(_records_up_to(connection, head.seq), head)
            if problem is None:
                # Read the highest seq before the head: an append committing in between cannot look foreign.
                highest = connection.execute(select(func.max(AuditEventRow.seq))).scalar_one() or 0
                now = _read_head(connection)
                if now is None:
                    problem = ChainProblem(ProblemKind.NO_HEAD, 0)
                elif highest > now.seq:
                    problem = ChainProblem(ProblemKind.BEYOND_HEAD, now.seq + 1)
            return ChainCheck(head, problem)

    def events(self, account_id: str | None = None, limit: int = 50,
               reference: str | None = None) -> list[ChainedRecord]:
        """The newest ``limit`` records, newest first; only those naming ``account_id``, or carrying the support
        ``reference``, when given (both indexed)."""
        query = select(AuditEventRow).order_by(AuditEventRow.seq.desc()).limit(limit)
        if account_id is not None:
            query = query.where(AuditEventRow.account_id == account_id)
        if reference is not None:
            query = query.where(AuditEventRow.reference == reference)
        with self._sessions() as session:
            return [_record(row) for row in session.scalars(query)]


def _read_head(connection: Connection) -> ChainHead | None:
    row = connection.execute(
        select(AuditChainHeadRow.seq, AuditChainHeadRow.hash).where(AuditChainHeadRow.id == _HEAD_ID)
    ).one_or_none()
    return ChainHead(row.seq, row.hash) if row is not None else None


def _records_up_to(connection: Connection, last: int) -> Iterator[ChainedRecord]:
    after = 0
    while True:
        query = (select(AuditEventRow.__table__).where(AuditEventRow.seq > after, AuditEventRow.seq <= last)
                 .order_by(AuditEventRow.seq).limit(VERIFY_BATCH))
        rows = connection.execute(query).all()
        for row in rows:
            yield _record(row)
        if len(rows) < VERIFY_BATCH:
            return
        after = rows[-1].seq


_check: type[AuditLog] = SqlAuditLog
