"""Engines and sessions for the broker's database (SQLite for small set-ups, PostgreSQL in production).

SQLite: foreign keys are off by default and must be switched on per connection; WAL lets readers proceed while
one writer commits; the busy timeout makes a writer wait for the lock instead of failing at once. The driver's
default (implicit ``BEGIN`` before the first INSERT/UPDATE/DELETE) is kept: every write transaction of the
stores starts with its write, so it waits on the busy timeout rather than failing with a stale read snapshot.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

#: seconds a SQLite writer waits for another writer before "database is locked"
SQLITE_BUSY_TIMEOUT = 30.0


def create_engine_for(url: str) -> Engine:
    """An engine for ``url`` (``sqlite:///path/broker.db`` or ``postgresql+psycopg://...``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT},
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
    finally:
        cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (the stores hand out plain values)."""
    return sessionmaker(engine, expire_on_commit=False)
