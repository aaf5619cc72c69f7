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

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Insert, Row, Table, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from broker.core.model import Protocol
from broker.core.ports import SsoSessionRecord, SsoSessionRegistry
from broker.core.sessions import Participant
from broker.core.upstream_logout_tokens import recordable_sid
from broker.storage.db import connection_factory, rowcount
from broker.storage.tables import SsoParticipantRow, SsoSessionRow
from broker.storage.unit_of_work import in_step

log = logging.getLogger(__name__)

USER_AGENT_LENGTH = 200


_SESSIONS: Table = SsoSessionRow.__table__  # type: ignore[assignment]
_PARTICIPANTS: Table = SsoParticipantRow.__table__  # type: ignore[assignment]
_LIVE = (_SESSIONS.c.ended_at.is_(None), _SESSIONS.c.expires_at > bindparam("now"))

# The login path's statements in SQLAlchemy Core on the tables, built once (issue 21: an ORM read cost about 2.5
# times its Core equivalent in CPU; ``bench/session_calls_bench.py``). They run on the store's step connections
# (``broker.storage.unit_of_work.StepConnections``), so inside a login step they join the step's transaction.
_REGISTER = insert(_SESSIONS)
_IS_LIVE = select(_SESSIONS.c.ended_at).where(_SESSIONS.c.sid == bindparam("sid"))
_TOUCH = update(_SESSIONS).where(_SESSIONS.c.sid == bindparam("touched")).values(last_seen=bindparam("now"))
_ACTIVE = (select(_SESSIONS).where(_SESSIONS.c.account_id == bindparam("account_id"), *_LIVE)
           .order_by(_SESSIONS.c.last_seen.desc(), _SESSIONS.c.sid))
_BY_UPSTREAM_SID = (select(_SESSIONS)
                    .where(_SESSIONS.c.upstream == bindparam("upstream"),
                           _SESSIONS.c.upstream_sid == bindparam("upstream_sid"), *_LIVE)
                    .order_by(_SESSIONS.c.created_at, _SESSIONS.c.sid))
_ALL_OF = (select(_SESSIONS).where(_SESSIONS.c.account_id == bindparam("account_id"))
           .order_by(_SESSIONS.c.created_at, _SESSIONS.c.sid))
_PARTICIPANTS_OF = (select(_PARTICIPANTS.c.party_id, _PARTICIPANTS.c.protocol, _PARTICIPANTS.c.subject,
                           _PARTICIPANTS.c.name_id_format)
                    .where(_PARTICIPANTS.c.sid == bindparam("sid"))
                    .order_by(_PARTICIPANTS.c.position, _PARTICIPANTS.c.joined_at, _PARTICIPANTS.c.party_id))


def _join_statement(dialect_insert: Callable[[Table], postgresql.Insert | sqlite.Insert]) -> Insert:
    """``SqlSsoSessionRegistry.join``'s upsert in ``dialect_insert``'s dialect: the app ``:party_id`` joins the
    session ``:sid`` at position count + 1 while the session exists; a second join updates its row."""
    row = _PARTICIPANTS.c
    known = select(_SESSIONS.c.sid).where(_SESSIONS.c.sid == bindparam("sid")).exists()
    position = select(func.count() + 1).select_from(_PARTICIPANTS).where(row.sid == bindparam("sid")).scalar_subquery()
    values = select(bindparam("sid", type_=row.sid.type), bindparam("party_id", type_=row.party_id.type), position,
                    bindparam("protocol", type_=row.protocol.type), bindparam("subject", type_=row.subject.type),
                    bindparam("name_id_format", type_=row.name_id_format.type),
                    bindparam("now", type_=row.joined_at.type), bindparam("now", type_=row.last_seen.type)).where(known)
    upsert = dialect_insert(_PARTICIPANTS).from_select(
        ["sid", "party_id", "position", "protocol", "subject", "name_id_format", "joined_at", "last_seen"], values)
    return upsert.on_conflict_do_update(
        index_elements=[row.sid, row.party_id],
        set_={"protocol": upsert.excluded.protocol, "subject": upsert.excluded.subject,
              "name_id_format": upsert.excluded.name_id_format, "last_seen": upsert.excluded.last_seen})


_JOIN_POSTGRESQL = _join_statement(postgresql.insert)
_JOIN_SQLITE = _join_statement(sqlite.insert)


def _record(row: Row[Any]) -> SsoSessionRecord:
    return SsoSessionRecord(row.sid, row.account_id, row.upstream, row.created_at, row.last_seen, row.expires_at,
                            row.user_agent, row.ended_at, upstream_sid=row.upstream_sid)


class SqlSsoSessionRegistry:
    def __init__(self, engine: Engine) -> None:
        self._core = connection_factory(engine)  # Core statements only: the step's connection in a login step
        self._pool = engine.pool
        self._join = _JOIN_POSTGRESQL if engine.dialect.name == "postgresql" else _JOIN_SQLITE

    def register(self, record: SsoSessionRecord) -> None:
        """A Core insert, sent at once (not at a flush); in a step, ``StepConnections.begin`` flushes the step's
        pending ORM writes first, so the account row it refers to is in the database before it."""
        values = {"sid": record.sid, "account_id": record.account_id, "upstream": record.upstream,
                  "created_at": record.created_at, "last_seen": record.last_seen, "expires_at": record.expires_at,
                  "user_agent": record.user_agent[:USER_AGENT_LENGTH], "ended_at": record.ended_at,
                  "upstream_sid": record.upstream_sid}
        with self._core.begin() as connection:
            connection.execute(_REGISTER, values)

    def is_live(self, sid: str) -> bool:
        with self._core() as connection:
            row = connection.execute(_IS_LIVE, {"sid": sid}).first()
            return row is not None and row.ended_at is None

    def touch(self, sid: str, now: datetime) -> None:
        with self._core.begin() as connection:
            connection.execute(_TOUCH, {"touched": sid, "now": now})

    def active(self, account_id: str, now: datetime) -> Sequence[SsoSessionRecord]:
        with self._core() as connection:
            return [_record(row) for row in connection.execute(_ACTIVE, {"account_id": account_id, "now": now})]

    def by_upstream_sid(self, upstream: str, upstream_sid: str, now: datetime) -> Sequence[SsoSessionRecord]:
        """An equality lookup on the (upstream, upstream_sid) index; live sessions only. A sid that is never
        recorded (``recordable_sid``: empty, too long, or with control characters, a NUL of which PostgreSQL
        refuses outright) finds none without a query."""
        if not recordable_sid(upstream_sid):
            return []
        parameters = {"upstream": upstream, "upstream_sid": upstream_sid, "now": now}
        with self._core() as connection:
            return [_record(row) for row in connection.execute(_BY_UPSTREAM_SID, parameters)]

    def all_of(self, account_id: str) -> Sequence[SsoSessionRecord]:
        with self._core() as connection:
            return [_record(row) for row in connection.execute(_ALL_OF, {"account_id": account_id})]

    def end_all(self, account_id: str, now: datetime) -> int:
        with self._core.begin() as connection:
            result = connection.execute(update(SsoSessionRow)
                                     .where(SsoSessionRow.account_id == account_id, SsoSessionRow.ended_at.is_(None))
                                     .values(ended_at=now))
            return rowcount(result)

    def end(self, sid: str, now: datetime) -> None:
        with self._core.begin() as connection:
            connection.execute(update(SsoSessionRow).where(SsoSessionRow.sid == sid, SsoSessionRow.ended_at.is_(None))
                            .values(ended_at=now))

    def join(self, sid: str, participant: Participant, now: datetime) -> None:
        """One statement (issue 21): an insert at the next position that, when the app joined before, updates
        its row instead (``INSERT ... ON CONFLICT (sid, party_id) DO UPDATE``: PostgreSQL's INSERT "ON CONFLICT
        Clause", SQLite's "UPSERT"; of two concurrent first joins one inserts and the other updates, never an
        error). It inserts only while the session exists, so an unknown sid is ignored: such a session counts as
        signed out. A session deleted in the instant between that check and the insert (its account erased)
        fails the foreign key; outside a login step that is ignored too."""
        parameters = {"sid": sid, "party_id": participant.party_id, "protocol": participant.protocol.value,
                      "subject": participant.subject, "name_id_format": participant.name_id_format, "now": now}
        try:
            with self._core.begin() as connection:
                connection.execute(self._join, parameters)
        except IntegrityError:
            if in_step(self._pool):
                raise  # the step's transaction is aborted: the login fails as a whole
            log.info("sso participant not recorded: session %s... ended meanwhile", sid[:8])

    def participants(self, sid: str) -> Sequence[Participant]:
        with self._core() as connection:
            return [Participant(row.party_id, Protocol(row.protocol), row.subject, row.name_id_format)
                    for row in connection.execute(_PARTICIPANTS_OF, {"sid": sid})]


_check: type[SsoSessionRegistry] = SqlSsoSessionRegistry
