"""The server-side registry of SSO sessions in SQL (``broker.core.ports.SsoSessionRegistry``).

The browser's own session still carries its SSO session; this registry only says which ones exist, so the
citizen can see where they are signed in and end them all at once. A session the registry does not know, or
knows as ended, counts as signed out (``broker.web.browser_state.current_sso``). Deleting an account deletes
its rows (foreign key cascade).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, select, update

from broker.core.ports import SsoSessionRecord, SsoSessionRegistry
from broker.storage.db import session_factory
from broker.storage.tables import SsoSessionRow

USER_AGENT_LENGTH = 200


def _record(row: SsoSessionRow) -> SsoSessionRecord:
    return SsoSessionRecord(row.sid, row.account_id, row.upstream, row.created_at, row.last_seen, row.expires_at,
                            row.user_agent, row.ended_at)


class SqlSsoSessionRegistry:
    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

    def register(self, record: SsoSessionRecord) -> None:
        with self._sessions.begin() as session:
            session.add(SsoSessionRow(sid=record.sid, account_id=record.account_id, upstream=record.upstream,
                                      created_at=record.created_at, last_seen=record.last_seen,
                                      expires_at=record.expires_at,
                                      user_agent=record.user_agent[:USER_AGENT_LENGTH], ended_at=record.ended_at))

    def is_live(self, sid: str) -> bool:
        with self._sessions() as session:
            row = session.get(SsoSessionRow, sid)
            return row is not None and row.ended_at is None

    def touch(self, sid: str, now: datetime) -> None:
        with self._sessions.begin() as session:
            session.execute(update(SsoSessionRow).where(SsoSessionRow.sid == sid).values(last_seen=now))

    def active(self, account_id: str, now: datetime) -> Sequence[SsoSessionRecord]:
        query = (select(SsoSessionRow)
                 .where(SsoSessionRow.account_id == account_id, SsoSessionRow.ended_at.is_(None),
                        SsoSessionRow.expires_at > now)
                 .order_by(SsoSessionRow.last_seen.desc(), SsoSessionRow.sid))
        with self._sessions() as session:
            return [_record(row) for row in session.scalars(query)]

    def all_of(self, account_id: str) -> Sequence[SsoSessionRecord]:
        query = (select(SsoSessionRow).where(SsoSessionRow.account_id == account_id)
                 .order_by(SsoSessionRow.created_at, SsoSessionRow.sid))
        with self._sessions() as session:
            return [_record(row) for row in session.scalars(query)]

    def end_all(self, account_id: str, now: datetime) -> int:
        with self._sessions.begin() as session:
            result = session.execute(update(SsoSessionRow)
                                     .where(SsoSessionRow.account_id == account_id, SsoSessionRow.ended_at.is_(None))
                                     .values(ended_at=now))
            return int(getattr(result, "rowcount", 0) or 0)

    def end(self, sid: str, now: datetime) -> None:
        with self._sessions.begin() as session:
            session.execute(update(SsoSessionRow).where(SsoSessionRow.sid == sid, SsoSessionRow.ended_at.is_(None))
                            .values(ended_at=now))


_check: type[SsoSessionRegistry] = SqlSsoSessionRegistry
