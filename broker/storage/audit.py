"""The audit log in SQL: ``broker.core.ports.AuditLog``, append-only and hash-chained (``broker.core.audit_chain``).

The trail is ``AUDIT_CHAINS`` parallel chains, each with its head row in ``audit_chain_head`` (ids 1..8), so
appends do not all queue on one row lock (issue 21). Within a chain appending is serialized across processes
and instances, so no chain can fork; the record and its chain's new head are written in one transaction,
in three statements:

- PostgreSQL: ``SELECT id, seq, hash FROM audit_chain_head ORDER BY (id - first) mod 8 LIMIT 1 FOR UPDATE
  SKIP LOCKED`` locks the first head no other transaction holds, starting at this process's own chain so
  instances spread; READ COMMITTED returns the row version last committed, which is the head to follow. Only
  when all eight are held does it wait, on its own chain (plain ``FOR UPDATE``), then reads the head the
  holder committed.
- SQLite has no row locks: the first statement is an ``UPDATE ... RETURNING`` of one head, which takes the
  database's write lock (``broker.storage.db``: the transaction starts with its write), so the head is read
  under that lock; appends are one at a time there whatever the chain, so one chain is used.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Row, Table, bindparam, func, insert, select, update

from broker.core.audit import AuditEvent
from broker.core.audit_chain import (
    AUDIT_CHAINS,
    CHAIN_IDS,
    ChainedRecord,
    ChainHead,
    ChainProblem,
    ProblemKind,
    anchor_problem,
    anchor_text,
    chain_hash,
    combined_digest,
    verify_chain,
)
from broker.core.ports import AuditLog
from broker.storage.db import session_factory
from broker.storage.tables import AuditChainHeadRow, AuditEventRow
from broker.storage.unit_of_work import at_step_end

#: rows read per query while verifying: memory stays constant however long the trail
VERIFY_BATCH = 1000


class AuditChainHeadMissing(RuntimeError):
    """The chain-head row is gone (migrations 0004 and 0023 make them): nothing can be appended to that chain
    until it is restored."""


@dataclass(frozen=True)
class ChainCheck:
    """What ``SqlAuditLog.check`` found: the heads the chains were checked against (those that exist, in chain
    order) and every chain's first break (at most one per chain, plus records in unknown chains and anchor
    mismatches)."""

    heads: tuple[ChainHead, ...]
    problems: tuple[ChainProblem, ...]

    @property
    def problem(self) -> ChainProblem | None:
        """The first problem, or ``None`` when the trail is intact."""
        return self.problems[0] if self.problems else None

    @property
    def head(self) -> ChainHead | None:
        """All chains as one: ``seq`` is the number of records, ``hash`` the combined digest; ``None`` when a
        chain's head is missing."""
        if len(self.heads) != AUDIT_CHAINS:
            return None
        return ChainHead(sum(h.seq for h in self.heads), combined_digest(self.heads), 0)

    @property
    def anchor(self) -> str:
        """The heads as the line an operator keeps (``broker.core.audit_chain.anchor_text``)."""
        return anchor_text(self.heads)


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
        hash=row.hash, id=row.id, chain=row.chain,
    )


def process_chain() -> int:
    """The chain this process tries first on PostgreSQL, so that instances (processes) start on different ones."""
    return os.getpid() % AUDIT_CHAINS + 1


_HEAD: Table = AuditChainHeadRow.__table__  # type: ignore[assignment]
_INSERT_RECORD = insert(AuditEventRow)
_MOVE_HEAD = (update(_HEAD).where(_HEAD.c.id == bindparam("chain_id"))
              .values(seq=bindparam("new_seq"), hash=bindparam("new_hash")))
_FIRST_FREE_HEAD = (select(_HEAD.c.id, _HEAD.c.seq, _HEAD.c.hash)
                    .order_by((_HEAD.c.id - bindparam("first") + AUDIT_CHAINS) % AUDIT_CHAINS).limit(1)
                    .with_for_update(skip_locked=True))
_OWN_HEAD = select(_HEAD.c.id, _HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == bindparam("first")).with_for_update()
#: SQLite: takes the database's write lock and reads the head under it (the seq it writes is overwritten)
_LOCK_HEAD_SQLITE = (update(_HEAD).where(_HEAD.c.id == bindparam("first")).values(seq=_HEAD.c.seq)
                     .returning(_HEAD.c.seq, _HEAD.c.hash))


class SqlAuditLog:
    def __init__(self, engine: Engine, first_chain: int | None = None) -> None:
        """``first_chain``: the chain appends try first (PostgreSQL: others when it is locked; SQLite: the only one
        used); by default chain 1 on SQLite and ``process_chain()`` on PostgreSQL."""
        self._engine = engine
        self._sessions = session_factory(engine)
        self._postgres = engine.dialect.name == "postgresql"
        if first_chain is not None and first_chain not in CHAIN_IDS:
            raise ValueError(f"first_chain must be 1..{AUDIT_CHAINS}")
        self._first = first_chain or (process_chain() if self._postgres else 1)

    def record(self, event: AuditEvent) -> None:
        """Append ``event`` to a chain: at once in a transaction of its own, or, in a login step, with the step's
        other records at its end (``broker.storage.unit_of_work.at_step_end``), just before it commits."""
        event = stored_form(event)
        pending = at_step_end(self._engine.pool, self, self._append)
        if pending is not None:
            pending.append(event)
            return
        with self._engine.begin() as connection:
            self._append(connection, [event])

    def _append(self, connection: Connection, events: list[AuditEvent]) -> None:
        """``events`` appended in order to one chain, in the transaction of ``connection``: its head locked, the
        records inserted (one round trip), the head moved to the last of them."""
        chain, seq, prev_hash = self._take_head(connection)
        rows = []
        for event in events:
            digest = chain_hash(prev_hash, seq, event)
            rows.append({"at": event.at, "kind": event.kind.value, "account_id": event.account_id,
                         "upstream": event.upstream, "downstream": event.downstream, "reason": event.reason,
                         "reference": event.reference, "chain": chain, "seq": seq, "prev_hash": prev_hash,
                         "hash": digest})
            seq, prev_hash = seq + 1, digest
        connection.execute(_INSERT_RECORD, rows[0] if len(rows) == 1 else rows)  # one row: no executemany
        connection.execute(_MOVE_HEAD, {"chain_id": chain, "new_seq": seq - 1, "new_hash": prev_hash})

    def _take_head(self, connection: Connection) -> tuple[int, int, str]:
        """Lock one chain's head for this transaction: (chain, the next record's seq, the hash it follows)."""
        first = {"first": self._first}
        if not self._postgres:
            # Lock first (the database) and read what is locked, in one statement: UPDATE ... RETURNING. The
            # head is moved to its final place by _MOVE_HEAD.
            taken = connection.execute(_LOCK_HEAD_SQLITE, first).one_or_none()
            if taken is None:
                raise AuditChainHeadMissing(f"audit chain {self._first}'s head is missing; run 'broker audit verify'")
            return self._first, taken[0] + 1, taken[1]
        # The first head nobody holds, from this process's own chain on; only if all are held, wait for our own.
        row = connection.execute(_FIRST_FREE_HEAD, first).one_or_none()
        if row is None:
            row = connection.execute(_OWN_HEAD, first).one_or_none()
        if row is None:
            raise AuditChainHeadMissing(f"audit chain {self._first}'s head is missing; run 'broker audit verify'")
        return row.id, row.seq + 1, row.hash

    def heads(self) -> tuple[ChainHead, ...]:
        """Every chain's newest ``seq`` and hash as written with it, in chain order; a chain whose head row is
        gone is absent."""
        with self._engine.connect() as connection:
            return tuple(_read_heads(connection).values())

    def head(self, chain: int = 1) -> ChainHead | None:
        """Chain ``chain``'s newest record's ``seq`` and hash; ``None`` if its head row is gone."""
        return next((h for h in self.heads() if h.chain == chain), None)

    def verify(self) -> ChainProblem | None:
        """The first break in the audit trail, or ``None`` when it is intact (``check`` tells the heads too)."""
        return self.check().problem

    def check(self, anchor: Mapping[int, ChainHead] | None = None) -> ChainCheck:
        """Verify every chain up to its current head, in ``seq`` order and in batches (constant memory); with
        ``anchor`` (``broker.core.audit_chain.parse_anchor``), also that each saved head is still there.

        Safe while the broker appends: records are only ever added above the heads read at the start, and each
        commits together with the head that names it.
        """
        with self._engine.connect() as connection:
            heads = _read_heads(connection)
            problems: dict[int, ChainProblem] = {}
            for chain in CHAIN_IDS:
                head = heads.get(chain)
                broken = (ChainProblem(ProblemKind.NO_HEAD, 0, chain=chain) if head is None
                          else verify_chain(_records_up_to(connection, chain, head.seq), head, chain))
                if broken is not None:
                    problems[chain] = broken
            # Read the highest seqs before the heads again: an append committing in between cannot look foreign.
            highest = connection.execute(select(AuditEventRow.chain, func.min(AuditEventRow.seq),
                                                func.max(AuditEventRow.seq)).group_by(AuditEventRow.chain)).all()
            now = _read_heads(connection)
            strangers: list[ChainProblem] = []
            for chain, lowest, top in highest:
                if chain not in CHAIN_IDS:
                    strangers.append(ChainProblem(ProblemKind.UNKNOWN_CHAIN, lowest, chain=chain))
                elif chain in now and top > now[chain].seq:
                    problems.setdefault(chain, ChainProblem(ProblemKind.BEYOND_HEAD, now[chain].seq + 1, chain=chain))
            for saved in (anchor or {}).values():
                stored = connection.execute(select(AuditEventRow.hash).where(
                    AuditEventRow.chain == saved.chain, AuditEventRow.seq == saved.seq)).scalar()
                mismatch = anchor_problem(saved, stored)
                if mismatch is not None:
                    strangers.append(mismatch)
            found = [problems[c] for c in sorted(problems)] + sorted(strangers, key=lambda p: p.chain)
            return ChainCheck(tuple(heads.values()), tuple(found))

    def events(self, account_id: str | None = None, limit: int = 50,
               reference: str | None = None) -> list[ChainedRecord]:
        """The newest ``limit`` records, newest first (by insertion, across the chains); only those naming
        ``account_id``, or carrying the support ``reference``, when given (both indexed)."""
        query = select(AuditEventRow).order_by(AuditEventRow.id.desc()).limit(limit)
        if account_id is not None:
            query = query.where(AuditEventRow.account_id == account_id)
        if reference is not None:
            query = query.where(AuditEventRow.reference == reference)
        with self._sessions() as session:
            return [_record(row) for row in session.scalars(query)]


def _read_heads(connection: Connection) -> dict[int, ChainHead]:
    rows = connection.execute(select(AuditChainHeadRow.id, AuditChainHeadRow.seq, AuditChainHeadRow.hash)
                              .order_by(AuditChainHeadRow.id)).all()
    return {row.id: ChainHead(row.seq, row.hash, row.id) for row in rows}


def _records_up_to(connection: Connection, chain: int, last: int) -> Iterator[ChainedRecord]:
    after = 0
    while True:
        query = (select(AuditEventRow.__table__)
                 .where(AuditEventRow.chain == chain, AuditEventRow.seq > after, AuditEventRow.seq <= last)
                 .order_by(AuditEventRow.seq).limit(VERIFY_BATCH))
        rows = connection.execute(query).all()
        for row in rows:
            yield _record(row)
        if len(rows) < VERIFY_BATCH:
            return
        after = rows[-1].seq


_check: type[AuditLog] = SqlAuditLog
