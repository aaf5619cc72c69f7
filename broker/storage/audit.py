"""The audit log in SQL: ``broker.core.ports.AuditLog``, append-only."""

from __future__ import annotations

from sqlalchemy import Engine, insert

from broker.core.audit import AuditEvent
from broker.core.ports import AuditLog
from broker.storage.db import session_factory
from broker.storage.tables import AuditEventRow

_LIMIT = 1024


def _short(value: str | None) -> str | None:
    return value[:_LIMIT] if value is not None else None


class SqlAuditLog:
    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

    def record(self, event: AuditEvent) -> None:
        statement = insert(AuditEventRow).values(
            at=event.at, kind=event.kind.value, account_id=event.account_id, upstream=_short(event.upstream),
            downstream=_short(event.downstream), reason=_short(event.reason), reference=event.reference,
        )
        with self._sessions.begin() as session:
            session.execute(statement)


_check: type[AuditLog] = SqlAuditLog
