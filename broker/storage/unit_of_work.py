"""One database transaction per login step (issue 21): the stores' writes of a step share it.

A login's last step writes to several stores: the account's identity (claims, last use), the login history, the
new SSO session and its first app, the OpenID grant and its code, the audit record. Each store used to commit
its own transaction: five BEGIN/COMMIT pairs and five pool checkouts for one step. ``SqlUnitOfWork`` opens one
transaction for the whole step (``broker.core.unit_of_work.UnitOfWork``) and the stores join it: their session
makers (``StepSessions``, made by ``broker.storage.db.session_factory`` and ``reader_factory``) hand out the
step's session while a step of the same database is open in this context, and their own session otherwise.

Inside a step a store's ``with sessions.begin() as session:`` block ends with a flush, not a commit: a
constraint a store handles (a unique key it catches as ``IntegrityError``) still fails at the end of that block,
as it did at its commit. A store that catches such an error asks for ``begin(savepoint=True)``: in a step, its
block runs in a SAVEPOINT, so the error rolls back that block only and the step's transaction goes on (SQL:2016
Part 2, 4.41.2 "savepoints"; PostgreSQL aborts the whole transaction otherwise). Reads in a step see its own
writes (they run on its connection). The step commits when it ends; if it raises, nothing of it is stored.

On SQLite a step is not one transaction: each store commits its own writes, as without a step. SQLite has one
writer: a step would hold the database's write lock until it commits, and any write of the same request through
another connection would wait for that lock, i.e. for itself, until the busy timeout (the browser-session table
of Flask-Session's SQLAlchemy backend is such a write: a sign-in renews the session id). SQLite serves small
set-ups, where the commits a step saves matter little; PostgreSQL is where they count.

A step opened while another is open in the same context joins it (it does not nest a transaction).

A store may put its writes off to the step's end (``at_step_end``): the audit trail does, so that the records of
one step are appended under one lock of their chain's head, taken at the end of the step and held only until its
commit, instead of from the step's first record on.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import Pool


@dataclass(frozen=True)
class _Step:
    pool: Pool
    session: Session
    #: what stores put off to the step's end (``at_step_end``): per key, the items and what writes them
    deferred: dict[Hashable, tuple[list[Any], Callable[[Connection, list[Any]], None]]] = field(default_factory=dict)

    def connection(self) -> Connection:
        """The step's connection for Core statements, the step's pending ORM writes sent first (a Core statement
        is sent at once, and may refer to them)."""
        self.session.flush()
        return self.session.connection()

    def write_deferred(self) -> None:
        """Each store's deferred items, written by its callback on the step's connection, in the order the
        stores first deferred something."""
        if not self.deferred:
            return
        connection = self.connection()
        for items, write in self.deferred.values():
            write(connection, items)


#: the step open in this context (a request's thread), if any
_open: ContextVar[_Step | None] = ContextVar("broker_unit_of_work", default=None)


def _step_on(pool: Pool) -> _Step | None:
    """The open step when it is on ``pool``'s database (an engine and its ``reading`` variant share one pool),
    else None."""
    step = _open.get()
    return step if step is not None and step.pool is pool else None


def _step_for(pool: Pool) -> Session | None:
    """The open step's session when it is on ``pool``'s database, else None."""
    step = _step_on(pool)
    return step.session if step is not None else None


class StepSessions:
    """A session maker whose sessions join the open step of its database (see the module docstring); used by
    the stores as they used ``sessionmaker``: ``with sessions.begin() as s`` to write, ``with sessions() as s`` to
    read."""

    def __init__(self, maker: sessionmaker[Session], pool: Pool) -> None:
        self._maker = maker
        self._pool = pool

    @contextmanager
    def begin(self, *, savepoint: bool = False) -> Iterator[Session]:
        """A transaction of its own, committed at the end of the block; in a step, the step's session, flushed
        at the end of the block (in a SAVEPOINT with ``savepoint``: for a block that catches its own errors)."""
        session = _step_for(self._pool)
        if session is None:
            with self._maker.begin() as own:
                yield own
            return
        # What other stores of the step added through the ORM goes first: a Core statement in the block is sent at
        # once, and may refer to it (an SSO session or a grant to the account created earlier in the step).
        session.flush()
        if savepoint:
            with session.begin_nested():
                yield session
        else:
            yield session
            session.flush()

    @contextmanager
    def __call__(self) -> Iterator[Session]:
        """A session for reads: the step's while one is open (it sees the step's writes), else one of its own."""
        session = _step_for(self._pool)
        if session is None:
            with self._maker() as own:
                yield own
        else:
            yield session


class StepConnections:
    """``StepSessions`` for stores that send only Core statements: the same contract (``begin()`` to write,
    ``()`` to read, the open step's when there is one), with a ``Connection`` where that hands out a ``Session``.
    A Core statement costs less on a connection than through a session (``bench/session_calls_bench.py``), and a
    read outside a step checks out a bare connection, not a session. Reads outside a step use ``reader``, an
    engine on the same pool (``broker.storage.db.reading``: no transaction, no ``BEGIN``)."""

    def __init__(self, engine: Engine, reader: Engine) -> None:
        self._engine = engine
        self._reader = reader
        self._pool = engine.pool

    @contextmanager
    def begin(self, *, savepoint: bool = False) -> Iterator[Connection]:
        """A transaction of its own, committed at the end of the block; in a step, the step's connection (its
        pending ORM writes flushed first), in a SAVEPOINT with ``savepoint``."""
        step = _step_on(self._pool)
        if step is None:
            with self._engine.begin() as own:
                yield own
            return
        connection = step.connection()
        if savepoint:
            with connection.begin_nested():
                yield connection
        else:
            yield connection

    @contextmanager
    def __call__(self) -> Iterator[Connection]:
        """A connection for reads: the step's while one is open (it sees the step's writes), else one of its own."""
        step = _step_on(self._pool)
        if step is None:
            with self._reader.connect() as own:
                yield own
        else:
            yield step.connection()


def at_step_end(pool: Pool, key: Hashable,
                write: Callable[[Connection, list[Any]], None]) -> list[Any] | None:
    """The list a store appends to for the open step of ``pool``'s database to pass to ``write`` just before the
    step commits (one list per ``key``, so a store's items of one step are written together, in one go); None when
    no step is open (on SQLite never: see the module docstring), and the store writes at once. If the step raises,
    nothing of it is written, as for its other writes."""
    step = _step_on(pool)
    if step is None:
        return None
    deferred = step.deferred.get(key)
    if deferred is None:
        deferred = step.deferred[key] = ([], write)
    return deferred[0]


class SqlUnitOfWork:
    """``broker.core.unit_of_work.UnitOfWork`` on one database: ``with unit_of_work(): ...`` is one transaction
    (on a server database; on SQLite, separate writes)."""

    def __init__(self, engine: Engine) -> None:
        self._maker = sessionmaker(engine, expire_on_commit=False)
        self._pool = engine.pool
        self._sqlite = engine.dialect.name == "sqlite"

    @contextmanager
    def __call__(self) -> Iterator[None]:
        if _open.get() is not None:
            yield  # joins the step already open
            return
        if self._sqlite:
            yield  # separate writes: see the module docstring
            return
        with self._maker.begin() as session:
            step = _Step(self._pool, session)
            token = _open.set(step)
            try:
                yield
                step.write_deferred()  # only when the step succeeded: its last writes, then the commit
            finally:
                _open.reset(token)


def in_step(pool: Pool) -> bool:
    """Whether a step of ``pool``'s database is open in this context."""
    return _step_for(pool) is not None
