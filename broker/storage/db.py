"""Engines and sessions for the broker's database (SQLite for small set-ups, PostgreSQL in production).

SQLite: foreign keys are off by default and must be switched on per connection; WAL lets readers proceed while
one writer commits (with ``synchronous = NORMAL``, its documented safe pairing); the busy timeout makes a
writer wait for the lock instead of failing at once. The driver's
default (implicit ``BEGIN`` before the first INSERT/UPDATE/DELETE) is kept: every write transaction of the
stores starts with its write, so it waits on the busy timeout rather than failing with a stale read snapshot.

PostgreSQL (issue 21: round trips per login): a pooled connection is pinged only when it comes back into use
after resting in the pool longer than ``IDLE_PING_AFTER`` (``ping_when_idle``), not on every checkout as
``pool_pre_ping`` did; and reads run outside any transaction (``reading``), so psycopg sends neither ``BEGIN``
before them nor ``ROLLBACK`` after them. A read that was ``BEGIN``, ``SELECT``, ``ROLLBACK`` and a ping (four
round trips) is one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from broker.storage.unit_of_work import StepConnections, StepSessions

#: seconds a SQLite writer waits for another writer before "database is locked"
SQLITE_BUSY_TIMEOUT = 30.0
#: seconds to wait for a PostgreSQL connection (unless the URL sets ``connect_timeout``)
CONNECT_TIMEOUT = 3
#: seconds a pooled connection may rest unused before its next checkout pings it first (``ping_when_idle``)
IDLE_PING_AFTER = 10.0
#: where the pool's connection record keeps the ``clock()`` of its last return to the pool
_RESTING_SINCE = "broker_resting_since"


def create_engine_for(url: str) -> Engine:
    """An engine for ``url`` (``sqlite:///path/broker.db`` or ``postgresql+psycopg://...``)."""
    engine = create_engine(make_url(url), **engine_options(url))
    tune_engine(engine)
    return engine


def engine_options(url: str) -> dict[str, Any]:
    """``create_engine`` options for ``url``; also given to Flask-SQLAlchemy for the browser-session table."""
    if make_url(url).get_backend_name() == "sqlite":
        return {"connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT}}
    options: dict[str, Any] = {}  # no pool_pre_ping: ``tune_engine`` pings rested connections only
    if make_url(url).get_backend_name() == "postgresql" and "connect_timeout" not in make_url(url).query:
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}  # libpq: a dead server fails fast
    return options


def tune_engine(engine: Engine) -> None:
    """What every engine of the broker needs besides its ``engine_options``: SQLite's per-connection settings
    (``tune_sqlite``), or, on a server database, the ping of rested connections (``ping_when_idle``). Also for
    the engine Flask-SQLAlchemy makes for the browser-session table."""
    if engine.dialect.name == "sqlite":
        tune_sqlite(engine)
    else:
        ping_when_idle(engine)


def ping_when_idle(engine: Engine, after: float = IDLE_PING_AFTER,
                   clock: Callable[[], float] = time.monotonic) -> None:
    """Ping a pooled connection at checkout when it rested in the pool more than ``after`` seconds (the
    "pessimistic" disconnect handling of SQLAlchemy's pooling docs, with a custom checkout event instead of
    ``pool_pre_ping``, which pings at every checkout: one more round trip per store call).

    Under load a connection never rests that long, so it is not pinged; after a quiet period (when a firewall,
    a proxy or a restarted server may have dropped it) its first use is checked. A ping that meets a
    disconnect raises ``InvalidatePoolError``: the pool replaces this connection and retires every connection
    it opened before (they went through the same outage), as ``pool_pre_ping`` does. A connection that breaks
    while in use, or rested less than ``after``, fails the statement it carried; SQLAlchemy then invalidates
    the whole pool the same way, so after a restart under load only the requests in flight fail, and they get
    the outage page (``broker.web.ops.outages``). A fresh connection has no resting time and is not pinged."""
    dialect = engine.dialect

    def returned(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_RESTING_SINCE] = clock()

    def taken(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
        since = record.info.pop(_RESTING_SINCE, None)
        if since is None or clock() - since <= after:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise InvalidatePoolError(f"a pooled connection did not answer after {after:g} s idle") from exc
            raise

    event.listen(engine, "checkin", returned)
    event.listen(engine, "checkout", taken)


def tune_sqlite(engine: Engine) -> None:
    """Apply the per-connection SQLite settings to every new connection of ``engine``; drops pooled ones.
    A database file that does not exist yet is created first, readable by its owner only (``private_file``)."""
    if engine.dialect.name == "sqlite":
        private_file(engine.url.database)
        event.listen(engine, "connect", _sqlite_on_connect)
        engine.dispose()


def private_file(database: str | None) -> None:
    """Create the SQLite file ``database`` with mode 0600 unless it exists (issue 15, point 2: it holds the
    browser sessions, grants and sealed claims). SQLite would create it with 0666 less the umask, typically
    0644; it creates ``-wal`` and ``-shm`` with the main file's permissions (sqlite.org/src ``os_unix.c``,
    ``findCreateFileMode``), so they are 0600 too. An existing file keeps the mode its operator gave it.
    Nothing for an in-memory database or a ``file:`` URI."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return
    except OSError:  # no such folder, no permission: SQLite reports it when it connects, as it always did
        return


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        # With WAL, NORMAL never corrupts the database; a power cut may lose the last commits only
        # (sqlite.org/pragma.html#pragma_synchronous). It saves an fsync per commit on the login path.
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def session_factory(engine: Engine) -> StepSessions:
    """Sessions whose objects stay readable after commit (the stores hand out plain values); inside a login step
    they are the step's (``broker.storage.unit_of_work``)."""
    return StepSessions(sessionmaker(engine, expire_on_commit=False), engine.pool)


def reading(engine: Engine) -> Engine:
    """``engine`` (same pool) for reads that need no transaction: on PostgreSQL its connections are in
    autocommit (``isolation_level="AUTOCOMMIT"``), so psycopg sends no ``BEGIN`` before the first ``SELECT``
    and there is nothing to roll back: one round trip per statement instead of three.

    Nothing a store reads this way loses consistency: under PostgreSQL's default READ COMMITTED each statement
    of a transaction already takes its own snapshot, so several reads in one transaction were never consistent
    with each other either; a read that must be (REPEATABLE READ, ``FOR UPDATE``) or that precedes a write in
    the same transaction stays in ``session_factory(engine).begin()``.

    On return to the pool SQLAlchemy still calls the driver's ``rollback()`` (``DefaultDialect.do_rollback``)
    and then restores the isolation level; psycopg 3 sends nothing for either: ``rollback()`` returns at once
    when the connection's transaction status is IDLE (``BaseConnection._rollback_gen``, psycopg 3.3), and
    ``autocommit`` / ``isolation_level`` are client-side settings applied to the next ``BEGIN``
    (``_set_autocommit_gen``, ``_set_isolation_level_gen``).

    SQLite: ``engine`` itself. The driver never opens a transaction before a ``SELECT`` (its implicit ``BEGIN``
    precedes INSERT/UPDATE/DELETE only), so reads already run outside one, in process; AUTOCOMMIT would only
    add a ``PRAGMA read_uncommitted`` each time SQLAlchemy restores the level on return to the pool."""
    if engine.dialect.name == "sqlite":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def reader_factory(engine: Engine) -> StepSessions:
    """Sessions for reads only (``reading``): never ``commit``, never write through them. Inside a login step, the
    step's session: a read there sees what the step wrote."""
    return StepSessions(sessionmaker(reading(engine), expire_on_commit=False), engine.pool)


def connection_factory(engine: Engine) -> StepConnections:
    """Core connections for stores that send only Core statements: writes in ``engine.begin()``, reads on
    ``reading(engine)``; inside a login step, the step's connection (``broker.storage.unit_of_work``)."""
    return StepConnections(engine, reading(engine))


def rowcount(result: object) -> int:
    """How many rows an UPDATE or DELETE changed (the compare-and-set of a conditional write decides by it)."""
    return int(getattr(result, "rowcount", 0) or 0)
