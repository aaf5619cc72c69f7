"""The login history behind risk-based challenges, in SQL (``broker.core.risk.LoginHistory``; issue 17).

Rows hold keyed hashes only (``broker.core.risk.login_place``): every value is checked to be 64 hexadecimal
digits before it is written, so a raw address cannot reach the table even by mistake. ``signals`` is one
``SELECT`` of scalar subqueries (one round trip per login), each served by an index: (account, at),
(account, device), (account, network), (address, at), and (account, at) of the failures.

Code entries (``core.backoff``): ``begin_code_attempt`` commits a row ``in_flight`` before the code is checked and
only then counts, in one ``SELECT``, the account's and the address's wrong answers in the window and the other
entries still in flight (index (account, at) and (address, at)). Of two entries made at once, whichever counts
second has seen the other's committed row, under READ COMMITTED as under SQLite's single writer: parallel requests
cannot all pass the check on the same count. A wrong answer turns the entry's row into a failure
(``record_second_factor_failure``); a right one's row stops counting once older than ``backoff.IN_FLIGHT``.

Retention: a write deletes at most ``PURGE_BATCH`` rows older than ``retention`` from both tables, oldest
first, in the same transaction (index on ``at``): every second-factor write, and every ``purge_every``-th login
of this process (issue 21: the two DELETEs are not on every login's path). A login adds one row and the purge
may delete ``PURGE_BATCH`` per ``purge_every`` logins (100 per 32 by default, three times what the logins add),
so the tables never hold more than a little beyond the retention; ``broker purge`` (``purge_expired``) deletes
all that is older at once. On PostgreSQL the rows to delete are taken with ``FOR UPDATE SKIP LOCKED``:
concurrent logins never wait on each other's purge. Deleting an account deletes its rows (foreign-key
cascades).
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Table,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)

from broker.core.backoff import IN_FLIGHT, CodeAttempt, Failures
from broker.core.risk import DEFAULT_RETENTION, LoginHistory, LoginPlace, LoginSignals
from broker.storage.db import connection_factory, reader_factory, rowcount, session_factory
from broker.storage.tables import LoginHistoryRow, SecondFactorFailureRow

#: rows older than the retention deleted per write, per table
PURGE_BATCH = 100
#: a login's write purges once in this many (per process)
PURGE_EVERY = 32
_HASH = re.compile(r"[0-9a-f]{64}")

_LOGINS: Table = LoginHistoryRow.__table__  # type: ignore[assignment]
_FAILURES: Table = SecondFactorFailureRow.__table__  # type: ignore[assignment]
_MINE = _LOGINS.c.account_id == bindparam("account_id")
_RECENT = _LOGINS.c.at >= bindparam("since")

# The login path's statements in SQLAlchemy Core on the tables, built once (issue 21: building them per call cost
# CPU in ``coercions.expect`` and the cache key). ``:device`` is NULL for a browser without a device cookie: the
# comparison is then never true, so such a login is always a new device, as the stored "" must not match it.
_SIGNALS = select(
    exists().where(_MINE),
    exists().where(_MINE, _LOGINS.c.device == bindparam("device")),
    exists().where(_MINE, _LOGINS.c.network == bindparam("network")),
    select(func.count()).select_from(_LOGINS).where(_MINE, _RECENT).scalar_subquery(),
    select(func.count()).select_from(_LOGINS)
    .where(_LOGINS.c.address == bindparam("address"), _RECENT).scalar_subquery(),
    exists().where(_MINE, _RECENT, _LOGINS.c.network != bindparam("network")),
    select(func.count()).select_from(_FAILURES)
    .where(_FAILURES.c.account_id == bindparam("account_id"), _FAILURES.c.at >= bindparam("since"),
           _FAILURES.c.in_flight.is_(False))
    .scalar_subquery(),
)
_RECORD = insert(_LOGINS)
#: per table, at most ``:batch`` rows older than ``:cutoff``, oldest first, deleted
_PURGES = tuple(
    delete(table).where(table.c.id.in_(
        select(table.c.id).where(table.c.at < bindparam("cutoff")).order_by(table.c.at)
        .limit(bindparam("batch", type_=Integer)).with_for_update(skip_locked=True)))
    for table in (_LOGINS, _FAILURES)
)


def _checked(place: LoginPlace) -> LoginPlace:
    """``place`` if its values are keyed hashes (the device may be empty); ``ValueError`` otherwise."""
    if not (_HASH.fullmatch(place.network) and _HASH.fullmatch(place.address)
            and (place.device == "" or _HASH.fullmatch(place.device))):
        raise ValueError("a login place must hold keyed hashes (broker.core.risk.login_place), never raw values")
    return place


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("naive datetime: the login history uses timezone-aware times only")
    return at


class SqlLoginHistory:
    def __init__(self, engine: Engine, retention: timedelta = DEFAULT_RETENTION,
                 purge_every: int = PURGE_EVERY) -> None:
        """``retention``: how long a login or a failure is kept (``RiskRules.retention``); ``purge_every``: a login's
        write purges once in so many."""
        if retention <= timedelta(0):
            raise ValueError("the login history's retention must be positive")
        if purge_every < 1:
            raise ValueError("purge_every must be at least 1")
        self._logins = itertools.count(1)
        self._purge_every = purge_every
        self._sessions = session_factory(engine)
        self._reads = reader_factory(engine)  # no transaction: one round trip per read
        self._core = connection_factory(engine)  # a login's read and write: Core statements
        self._retention = retention

    def signals(self, account_id: str, place: LoginPlace, now: datetime, window: timedelta) -> LoginSignals:
        _checked(place)
        parameters = {"account_id": account_id, "device": place.device or None, "network": place.network,
                      "address": place.address, "since": _aware(now) - window}
        with self._core() as connection:
            row = connection.execute(_SIGNALS, parameters).one()
        known, device, network, by_account, by_address, distant, failures = row
        return LoginSignals(
            new_device=not device, new_network=not network, logins_by_account=int(by_account),
            logins_by_address=int(by_address), failed_second_factors=int(failures), distant_networks=bool(distant),
            first_login=not known,
        )

    def record(self, account_id: str, place: LoginPlace, at: datetime) -> None:
        _checked(place)
        with self._core.begin() as connection:
            connection.execute(_RECORD, {"account_id": account_id, "device": place.device, "network": place.network,
                                      "address": place.address, "at": _aware(at)})
            if next(self._logins) % self._purge_every == 0:
                self._purge(connection, at)

    def purge_expired(self, now: datetime) -> int:
        """Delete every row older than the retention, in batches of ``PURGE_BATCH`` (``broker purge``); how many."""
        deleted = 0
        while True:
            with self._core.begin() as connection:
                batch = self._purge(connection, _aware(now))
            if batch == 0:
                return deleted
            deleted += batch

    def record_second_factor_failure(self, account_id: str, at: datetime, address: str | None = None) -> None:
        row = SecondFactorFailureRow
        with self._sessions.begin() as session:
            if address is not None:
                flying = (select(row.id).where(row.account_id == account_id, row.address == _hash(address),
                                               row.in_flight.is_(True))
                          .order_by(row.at.desc(), row.id.desc()).limit(1).with_for_update(skip_locked=True))
                claim = session.scalar(flying)
                if claim is not None and session.execute(
                        update(row).where(row.id == claim, row.in_flight.is_(True))
                        .values(in_flight=False, at=_aware(at))).rowcount == 1:  # type: ignore[attr-defined]
                    self._purge(session.connection(), at)
                    return
            session.add(row(account_id=account_id, at=_aware(at), address=address))
            session.flush()  # the new row first: on SQLite the write lock is then held before the purge reads
            self._purge(session.connection(), at)

    def begin_code_attempt(self, account_id: str, address: str, at: datetime, window: timedelta) -> CodeAttempt:
        row = SecondFactorFailureRow
        with self._sessions.begin() as session:  # committed before counting: see the module docstring
            mine = row(account_id=account_id, at=_aware(at), address=_hash(address), in_flight=True)
            session.add(mine)
            session.flush()  # the new row first (and its id): see record_second_factor_failure
            self._purge(session.connection(), at)
            claim = mine.id
        counted = (row.id != claim, row.at >= at - window, or_(row.in_flight.is_(False), row.at >= at - IN_FLIGHT))
        query = select(*_count_and_latest(row.account_id == account_id, counted),
                       *_count_and_latest(row.address == address, counted))
        with self._reads() as session:
            by_account, account_latest, by_address, address_latest = session.execute(query).one()
        return CodeAttempt(claim, Failures(int(by_account), account_latest), Failures(int(by_address), address_latest))

    def withdraw_code_attempt(self, claim: int) -> None:
        row = SecondFactorFailureRow
        with self._sessions.begin() as session:
            session.execute(delete(row).where(row.id == claim, row.in_flight.is_(True)))

    def _purge(self, connection: Connection, now: datetime) -> int:
        """At most ``PURGE_BATCH`` rows of each table older than the retention deleted; how many in all. A caller
        that added a row through the ORM flushes it first."""
        parameters = {"cutoff": now - self._retention, "batch": PURGE_BATCH}
        return sum(rowcount(connection.execute(purge, parameters)) for purge in _PURGES)


def _hash(value: str) -> str:
    if not _HASH.fullmatch(value):
        raise ValueError("an address must be a keyed hash (broker.core.risk.login_place), never a raw value")
    return value


def _count_and_latest(whose: ColumnElement[bool],
                      counted: tuple[ColumnElement[bool], ...]) -> tuple[ColumnElement[int], ColumnElement[datetime]]:
    """How many failures of ``whose`` are ``counted``, and the latest one's time, as two scalar subqueries."""
    row = SecondFactorFailureRow
    return (select(func.count()).select_from(row).where(whose, *counted).scalar_subquery(),
            select(func.max(row.at)).where(whose, *counted).scalar_subquery())


_check: type[LoginHistory] = SqlLoginHistory
