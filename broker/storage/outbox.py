"""The durable outbox in SQL (``broker.core.outbox.Outbox``; issue 18): table ``outbox_messages``.

Enqueue: one ``INSERT ... ON CONFLICT (receiver, jti) DO NOTHING RETURNING id`` (PostgreSQL, and SQLite from
3.35), committed before it returns; the row it returns, or not, says whether it queued anything, so the same event
is never queued twice for one receiver, even by two web workers at once. A message queued ``held`` gets the state
``held`` and is never claimed (the claim selects ``pending`` only); ``release_held`` makes a receiver's held
messages pending and due at once (one ``UPDATE``; their ``created_at`` keeps them in the order they were queued),
``drop_held`` deletes them (one ``DELETE``). Both find them by the unique index on ``(receiver, jti)``; no schema
change was needed (``state`` is a ``String(16)``).

Claim (lease): a pending message due at ``now`` whose lease is free (``leased_until`` NULL or past) is taken by
setting ``leased_until = now + lease`` and counting the attempt, and only the caller that set it sends it.

- PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` picks the rows and the ``UPDATE`` leases them in the same
  transaction; a concurrent claimer skips the locked rows instead of waiting, and once this transaction commits
  the lease excludes them.
- SQLite: the candidates are read first, then each is leased by a conditional ``UPDATE ... WHERE id = :id AND
  state = 'pending' AND (leased_until IS NULL OR leased_until <= :now)``; the row count (``db.rowcount``) decides
  whether this caller got it. SQLite has one writer at a time, and the write transaction begins with that
  ``UPDATE`` (``broker.storage.db``), so it sees every lease committed before it: of two claimers, the second
  finds the condition false.

``attempts`` counts claims (the attempt in progress included), so a message that kills its worker mid-send still
reaches ``MAX_ATTEMPTS`` and the dead-letter state. ``delivered`` and ``failed`` touch pending messages only, and
clear the lease. Retention: ``purge_delivered`` deletes at most ``PURGE_BATCH`` delivered messages older than the
retention per call (oldest first, index on ``delivered_at``); the worker calls it every pass. Dead letters stay
until the operator retries them (``broker outbox retry``). Times are timezone-aware (``tables.UTCDateTime``).

A message's ``Authorization`` header (an SSF stream's ``authorization_header``) is sealed with the claims key
(``broker.storage.sealing``), bound to its receiver and ``jti``; only an outbox made with the ``Sealer`` (the web
app's, the worker's) can queue or read one. One that does not open is sent without it (logged, never the value).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from broker.core.outbox import MessageState, Outbox, OutboxStatus, OutgoingMessage, QueuedMessage
from broker.storage.db import reader_factory, rowcount, session_factory
from broker.storage.delivery_tables import OutboxMessageRow
from broker.storage.sealing import Sealer, UnreadableValue

#: how long a delivered message is kept (the operator's view of what went out), then purged
DELIVERED_RETENTION = timedelta(days=7)
#: delivered messages deleted per ``purge_delivered`` call, at most
PURGE_BATCH = 500
#: ``last_error`` is cut to this length
ERROR_LENGTH = 500

_row = OutboxMessageRow
log = logging.getLogger(__name__)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("naive datetime: the outbox uses timezone-aware times only")
    return at


def _context(receiver: str, jti: str) -> tuple[str, ...]:
    return ("outbox_messages", "authorization", receiver, jti)


def _queued(row: OutboxMessageRow, sealer: Sealer | None = None) -> QueuedMessage:
    authorization = None
    if row.authorization_sealed is not None and sealer is not None:
        try:
            authorization = sealer.open(row.authorization_sealed, _context(row.receiver, row.jti))
        except UnreadableValue:
            log.warning("outbox: the authorization of %s jti=%s does not open; sent without it", row.kind, row.jti)
    return QueuedMessage(
        message_id=row.id,
        message=OutgoingMessage(receiver=row.receiver, jti=row.jti, kind=row.kind, url=row.url, body=row.body,
                                content_type=row.content_type, authorization=authorization),
        state=MessageState(row.state), attempts=row.attempts, created_at=row.created_at,
        next_attempt_at=row.next_attempt_at, last_error=row.last_error, delivered_at=row.delivered_at,
    )


def _lease_free(now: datetime) -> ColumnElement[bool]:
    return or_(_row.leased_until.is_(None), _row.leased_until <= now)


class SqlOutbox:
    """The outbox on ``engine``; holds no state of its own, so any number of processes may share the table."""

    def __init__(self, engine: Engine, retention: timedelta = DELIVERED_RETENTION,
                 sealer: Sealer | None = None) -> None:
        if retention <= timedelta(0):
            raise ValueError("the outbox's retention must be positive")
        self._sealer = sealer
        self._engine = engine
        self._sessions = session_factory(engine)
        self._reads = reader_factory(engine)  # no transaction: one round trip per read
        self._retention = retention

    def _sealed(self, message: OutgoingMessage) -> str | None:
        if message.authorization is None:
            return None
        if self._sealer is None:
            raise ValueError("an outbox without the claims key cannot keep an Authorization header")
        return self._sealer.seal(message.authorization, _context(message.receiver, message.jti))

    def enqueue(self, message: OutgoingMessage, now: datetime, held: bool = False) -> bool:
        state = MessageState.HELD if held else MessageState.PENDING
        values = {
            "id": str(uuid.uuid4()), "receiver": message.receiver, "jti": message.jti, "kind": message.kind,
            "url": message.url, "body": message.body, "content_type": message.content_type,
            "state": state.value, "attempts": 0, "created_at": _aware(now), "next_attempt_at": now,
            "authorization_sealed": self._sealed(message),
        }
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        statement = (dialect.insert(_row).values(**values)
                     .on_conflict_do_nothing(index_elements=["receiver", "jti"]).returning(_row.id))
        with self._sessions.begin() as session:  # RETURNING, as psycopg reports no row count for this INSERT
            return session.execute(statement).first() is not None

    def claim(self, now: datetime, limit: int, lease: timedelta) -> Sequence[QueuedMessage]:
        if limit < 1 or lease <= timedelta(0):
            raise ValueError("claim needs a positive limit and lease")
        due = (select(_row.id)
               .where(_row.state == MessageState.PENDING.value, _row.next_attempt_at <= _aware(now),
                      _lease_free(now))
               .order_by(_row.created_at, _row.id).limit(limit))
        until = now + lease
        lease_it = update(_row).values(leased_until=until, attempts=_row.attempts + 1)
        if self._engine.dialect.name == "postgresql":
            with self._sessions.begin() as session:
                ids = list(session.scalars(due.with_for_update(skip_locked=True)))
                if ids:
                    session.execute(lease_it.where(_row.id.in_(ids)))
                return self._claimed(session, ids)
        with self._reads() as session:
            candidates = list(session.scalars(due))
        with self._sessions.begin() as session:  # the first statement writes: see the module docstring
            ids = [message_id for message_id in candidates if rowcount(session.execute(
                lease_it.where(_row.id == message_id, _row.state == MessageState.PENDING.value,
                               _lease_free(now)))) == 1]
            return self._claimed(session, ids)

    def _claimed(self, session: Session, ids: list[str]) -> list[QueuedMessage]:
        if not ids:
            return []
        rows = session.scalars(select(_row).where(_row.id.in_(ids)).order_by(_row.created_at, _row.id)).all()
        return [_queued(row, self._sealer) for row in rows]

    def delivered(self, message_id: str, now: datetime) -> None:
        self._settle(message_id, state=MessageState.DELIVERED.value, delivered_at=_aware(now))

    def failed(self, message_id: str, now: datetime, error: str, retry_at: datetime | None) -> None:
        _aware(now)
        if retry_at is None:
            self._settle(message_id, state=MessageState.DEAD.value, last_error=error[:ERROR_LENGTH])
        else:
            self._settle(message_id, next_attempt_at=_aware(retry_at), last_error=error[:ERROR_LENGTH])

    def _settle(self, message_id: str, **values: object) -> None:
        """Record an attempt's outcome on a pending message and free its lease."""
        with self._sessions.begin() as session:
            session.execute(update(_row).where(_row.id == message_id, _row.state == MessageState.PENDING.value)
                            .values(leased_until=None, **values))

    def find(self, message_id: str) -> QueuedMessage | None:
        with self._reads() as session:
            row = session.get(_row, message_id)
            return None if row is None else _queued(row, self._sealer)

    def listing(self, state: MessageState, limit: int = 50) -> Sequence[QueuedMessage]:
        with self._reads() as session:
            rows = session.scalars(select(_row).where(_row.state == MessageState(state).value)
                                   .order_by(_row.created_at.desc(), _row.id.desc()).limit(limit)).all()
            return [_queued(row, self._sealer) for row in rows]

    def retry_dead(self, message_id: str, now: datetime) -> bool:
        """Back in the queue with a fresh count of attempts (``last_error`` is kept until the next attempt)."""
        with self._sessions.begin() as session:
            changed = session.execute(
                update(_row).where(_row.id == message_id, _row.state == MessageState.DEAD.value)
                .values(state=MessageState.PENDING.value, attempts=0, next_attempt_at=_aware(now),
                        leased_until=None))
            return rowcount(changed) == 1

    def status(self) -> OutboxStatus:
        """Counts by state (an index scan of ``(state, created_at)``) and the oldest pending message's time."""
        with self._reads() as session:
            counts = {str(state): int(count) for state, count in
                      session.execute(select(_row.state, func.count()).group_by(_row.state))}
            oldest = session.scalar(select(func.min(_row.created_at)).where(_row.state == MessageState.PENDING.value))
        return OutboxStatus(tuple((state, int(counts.get(state.value, 0))) for state in MessageState),
                            _aware(oldest) if oldest is not None else None)

    def held_count(self, receiver: str) -> int:
        query = select(func.count()).select_from(_row).where(_row.receiver == receiver,
                                                             _row.state == MessageState.HELD.value)
        with self._reads() as session:
            return session.scalar(query) or 0

    def release_held(self, receiver: str, now: datetime) -> int:
        statement = (update(_row).where(_row.receiver == receiver, _row.state == MessageState.HELD.value)
                     .values(state=MessageState.PENDING.value, next_attempt_at=_aware(now), leased_until=None))
        with self._sessions.begin() as session:
            return rowcount(session.execute(statement))

    def drop_held(self, receiver: str) -> int:
        statement = delete(_row).where(_row.receiver == receiver, _row.state == MessageState.HELD.value)
        with self._sessions.begin() as session:
            return rowcount(session.execute(statement))

    def purge_delivered(self, now: datetime, limit: int = PURGE_BATCH) -> int:
        """Delete at most ``limit`` delivered messages delivered before ``now - retention``, oldest first; how many.
        On PostgreSQL the rows are taken with ``FOR UPDATE SKIP LOCKED``: two workers purging never wait on each
        other."""
        cutoff = _aware(now) - self._retention
        old = (select(_row.id).where(_row.state == MessageState.DELIVERED.value, _row.delivered_at < cutoff)
               .order_by(_row.delivered_at).limit(limit).with_for_update(skip_locked=True))
        with self._sessions.begin() as session:
            return rowcount(session.execute(delete(_row).where(_row.id.in_(old))))


_check: type[Outbox] = SqlOutbox
