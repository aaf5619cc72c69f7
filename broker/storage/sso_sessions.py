"""The server-side registry of SSO sessions in SQL (``broker.core.ports.SsoSessionRegistry``).

The browser's own session still carries its SSO session; this registry says which ones exist, so the
citizen can see where they are signed in and end them all at once, and which apps each answered (its
participants), so single logout reaches every one of them whichever request recorded it. A session the
registry does not know, or knows as ended, counts as signed out (``broker.web.http.browser_state.current_sso``).
A session keeps its upstream OpenID provider's own session id (``upstream_sid``, revision 0016), so a logout token
of that provider ends that session only (``by_upstream_sid``; ``broker.journeys.upstream_backchannel``).
Deleting an account deletes its sessions and their participants (foreign key cascades).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broker.core.model import Protocol
from broker.core.ports import SsoSessionRecord, SsoSessionRegistry
from broker.core.sessions import Participant
from broker.core.upstream_logout_tokens import recordable_sid
from broker.storage.db import rowcount, session_factory
from broker.storage.tables import SsoParticipantRow, SsoSessionRow

USER_AGENT_LENGTH = 200


def _record(row: SsoSessionRow) -> SsoSessionRecord:
    return SsoSessionRecord(row.sid, row.account_id, row.upstream, row.created_at, row.last_seen, row.expires_at,
                            row.user_agent, row.ended_at, upstream_sid=row.upstream_sid)


class SqlSsoSessionRegistry:
    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

    def register(self, record: SsoSessionRecord) -> None:
        with self._sessions.begin() as session:
            session.add(SsoSessionRow(sid=record.sid, account_id=record.account_id, upstream=record.upstream,
                                      created_at=record.created_at, last_seen=record.last_seen,
                                      expires_at=record.expires_at,
                                      user_agent=record.user_agent[:USER_AGENT_LENGTH], ended_at=record.ended_at,
                                      upstream_sid=record.upstream_sid))

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

    def by_upstream_sid(self, upstream: str, upstream_sid: str, now: datetime) -> Sequence[SsoSessionRecord]:
        """An equality lookup on the (upstream, upstream_sid) index; live sessions only. A sid that is never
        recorded (``recordable_sid``: empty, too long, or with control characters, a NUL of which PostgreSQL
        refuses outright) finds none without a query."""
        if not recordable_sid(upstream_sid):
            return []
        query = (select(SsoSessionRow)
                 .where(SsoSessionRow.upstream == upstream, SsoSessionRow.upstream_sid == upstream_sid,
                        SsoSessionRow.ended_at.is_(None), SsoSessionRow.expires_at > now)
                 .order_by(SsoSessionRow.created_at, SsoSessionRow.sid))
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
            return rowcount(result)

    def end(self, sid: str, now: datetime) -> None:
        with self._sessions.begin() as session:
            session.execute(update(SsoSessionRow).where(SsoSessionRow.sid == sid, SsoSessionRow.ended_at.is_(None))
                            .values(ended_at=now))

    def join(self, sid: str, participant: Participant, now: datetime) -> None:
        """An update when the app joined before, else an insert at the next position. Of two concurrent first
        joins of one pair, the loser's insert hits the primary key (PostgreSQL waits for the winner's commit)
        and it updates the winner's row instead; SQLite's single writer serializes them anyway. An unknown sid
        (foreign key) is ignored: such a session counts as signed out."""
        try:
            with self._sessions.begin() as session:
                if self._update(session, sid, participant, now):
                    return
                position = session.scalar(select(func.count()).select_from(SsoParticipantRow)
                                          .where(SsoParticipantRow.sid == sid)) or 0
                session.add(SsoParticipantRow(sid=sid, party_id=participant.party_id, position=position + 1,
                                              protocol=participant.protocol.value, subject=participant.subject,
                                              name_id_format=participant.name_id_format, joined_at=now,
                                              last_seen=now))
        except IntegrityError:
            with self._sessions.begin() as session:
                self._update(session, sid, participant, now)

    @staticmethod
    def _update(session: Session, sid: str, participant: Participant, now: datetime) -> bool:
        result = session.execute(update(SsoParticipantRow)
                                 .where(SsoParticipantRow.sid == sid,
                                        SsoParticipantRow.party_id == participant.party_id)
                                 .values(protocol=participant.protocol.value, subject=participant.subject,
                                         name_id_format=participant.name_id_format, last_seen=now))
        return bool(getattr(result, "rowcount", 0))

    def participants(self, sid: str) -> Sequence[Participant]:
        query = (select(SsoParticipantRow).where(SsoParticipantRow.sid == sid)
                 .order_by(SsoParticipantRow.position, SsoParticipantRow.joined_at, SsoParticipantRow.party_id))
        with self._sessions() as session:
            return [Participant(row.party_id, Protocol(row.protocol), row.subject, row.name_id_format)
                    for row in session.scalars(query)]


_check: type[SsoSessionRegistry] = SqlSsoSessionRegistry
