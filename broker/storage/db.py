"""Engines and sessions for the broker's database (SQLite for small set-ups, PostgreSQL in production).

SQLite: foreign keys are off by default and must be switched on per connection; WAL lets readers proceed while
one writer commits (with ``synchronous = NORMAL``, its documented safe pairing); the busy timeout makes a
writer wait for the lock instead of failing at once. The driver's
default (implicit ``BEGIN`` before the first INSERT/UPDATE/DELETE) is kept: every write transaction of the
stores starts with its write, so it waits on the busy timeout rather than failing with a stale read snapshot.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

#: seconds a SQLite writer waits for another writer before "database is locked"
SQLITE_BUSY_TIMEOUT = 30.0
#: seconds to wait for a PostgreSQL connection (unless the URL sets ``connect_timeout``)
CONNECT_TIMEOUT = 3


def create_engine_for(url: str) -> Engine:
    """An engine for ``url`` (``sqlite:///path/broker.db`` or ``postgresql+psycopg://...``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, **engine_options(url))
        tune_sqlite(engine)
        return engine
    return create_engine(parsed, **engine_options(url))


def engine_options(url: str) -> dict[str, Any]:
    """``create_engine`` options for ``url``; also given to Flask-SQLAlchemy for the browser-session table."""
    if make_url(url).get_backend_name() == "sqlite":
        return {"connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT}}
    options: dict[str, Any] = {"pool_pre_ping": True}  # a connection broken by an outage is replaced, not used
    if make_url(url).get_backend_name() == "postgresql" and "connect_timeout" not in make_url(url).query:
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}  # libpq: a dead server fails fast
    return options


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


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (the stores hand out plain values)."""
    return sessionmaker(engine, expire_on_commit=False)


def rowcount(result: object) -> int:
    """How many rows an UPDATE or DELETE changed (the compare-and-set of a conditional write decides by it)."""
    return int(getattr(result, "rowcount", 0) or 0)
