"""Engines and sessions for the broker's database (SQLite for small set-ups, PostgreSQL in production).

SQLite: foreign keys are off by default and must be switched on per connection; WAL lets readers proceed while
one writer commits (with ``synchronous = NORMAL``, its documented safe pairing); the busy timeout makes a
writer wait for the lock instead of failing at once. The driver's
default (implicit ``BEGIN`` before the first INSERT/UPDATE/DELETE) is kept: every write transaction of the
stores starts with its write, so it waits on the busy timeout rather than failing with a stale read snapshot.
"""

from __future__ import annotations

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
    """Apply the per-connection SQLite settings to every new connection of ``engine``; drops pooled ones."""
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        engine.dispose()


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
