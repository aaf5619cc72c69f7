"""Server-side state of logins in progress, in SQL (``broker.core.ports.PendingStore``).

A row holds the hash of its handle and the payload sealed (``broker.storage.pending_seal``): a copy of the
table reveals neither what a login carries (a link offer's name and e-mail address) nor a handle to finish it.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError

from broker.core.pending_kinds import Kind
from broker.core.ports import HandleInUse, PendingStore
from broker.storage.db import reader_factory, session_factory
from broker.storage.pending_seal import PendingSeal, handle_digest
from broker.storage.sealing import Sealer
from broker.storage.tables import PendingStateRow


class SqlPendingStore:
    """Each handle is single-use: ``take`` deletes and returns in one statement."""

    def __init__(self, engine: Engine, sealer: Sealer) -> None:
        self._sessions = session_factory(engine)
        self._reads = reader_factory(engine)  # no transaction: one round trip per read
        self._seal = PendingSeal(sealer, "pending_states")

    def put(self, kind: Kind, payload: str, expires_at: datetime) -> str:
        handle = secrets.token_urlsafe(32)
        self.put_with_handle(kind, handle, payload, expires_at)
        return handle

    def put_with_handle(self, kind: Kind, handle: str, payload: str, expires_at: datetime) -> None:
        """Store under ``handle``; ``HandleInUse`` when the handle is already in use."""
        digest = handle_digest(handle)
        row = PendingStateRow(handle=digest, kind=kind.value, payload=self._seal.seal(kind, digest, payload),
                              expires_at=expires_at)
        try:
            with self._sessions.begin(savepoint=True) as session:
                session.add(row)
        except IntegrityError as exc:
            raise HandleInUse(handle[:16]) from exc

    def peek(self, kind: Kind, handle: str, now: datetime) -> str | None:
        digest = handle_digest(handle)
        query = select(PendingStateRow.payload).where(
            PendingStateRow.handle == digest, PendingStateRow.kind == kind.value, PendingStateRow.expires_at > now,
        )
        with self._reads() as session:
            return self._seal.open(kind, digest, session.scalars(query).one_or_none())

    def peek_many(self, kinds: Sequence[Kind], handle: str, now: datetime) -> dict[Kind, str]:
        """One ``SELECT``: the handle is the table's key, so at most one row, found if its kind is one of
        ``kinds``."""
        if not kinds:
            return {}
        digest = handle_digest(handle)
        by_value = {kind.value: kind for kind in kinds}
        query = select(PendingStateRow.kind, PendingStateRow.payload).where(
            PendingStateRow.handle == digest, PendingStateRow.kind.in_(list(by_value)),
            PendingStateRow.expires_at > now,
        )
        with self._reads() as session:
            rows = session.execute(query).all()
        found = {by_value[row.kind]: self._seal.open(by_value[row.kind], digest, row.payload) for row in rows}
        return {kind: payload for kind, payload in found.items() if payload is not None}

    def take(self, kind: Kind, handle: str, now: datetime) -> str | None:
        """``DELETE ... RETURNING``: of concurrent takes the database lets exactly one delete the row."""
        digest = handle_digest(handle)
        statement = (
            delete(PendingStateRow)
            .where(PendingStateRow.handle == digest, PendingStateRow.kind == kind.value,
                   PendingStateRow.expires_at > now)
            .returning(PendingStateRow.payload)
            .execution_options(synchronize_session=False)
        )
        with self._sessions.begin() as session:
            stored = session.scalars(statement).one_or_none()
        return self._seal.open(kind, digest, stored)

    def purge_expired(self, now: datetime) -> int:
        """Delete every expired state; the number deleted."""
        statement = delete(PendingStateRow).where(PendingStateRow.expires_at <= now)
        with self._sessions.begin() as session:
            return session.connection().execute(statement).rowcount


# mypy checks here that the class satisfies the port the core depends on.
_check: type[PendingStore] = SqlPendingStore
