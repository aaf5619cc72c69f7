"""PostgreSQL round trips of the stores (issue 21), counted on the wire: libpq's protocol trace (``PQtrace``) of
each connection, where every exchange the client waits for ends with the server's ``ReadyForQuery``.

A read is one round trip: no ``BEGIN`` before it, no ``ROLLBACK`` after it (``broker.storage.db.reading``), no
ping before it while its connection is in steady use; a connection that rested in the pool longer than
``IDLE_PING_AFTER`` is pinged first, and one the server dropped meanwhile is replaced without the caller seeing
it (``broker.storage.db.ping_when_idle``). The clock of the pool is injected: nothing sleeps. Skipped unless
``BROKER_TEST_DATABASE_URL`` is set.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any

import pytest
from sqlalchemy import Engine, create_engine, event, make_url, select, text
from sqlalchemy.exc import OperationalError

from broker.core.model import UpstreamIdentity
from broker.storage import SqlAccountStore, create_engine_for, upgrade
from broker.storage.db import IDLE_PING_AFTER, engine_options, ping_when_idle, session_factory
from broker.storage.sealing import Sealer
from broker.storage.tables import AccountRow
from tests.databases import POSTGRES_ENV, postgres_schema

pytestmark = pytest.mark.skipif(not os.environ.get(POSTGRES_ENV), reason=f"needs {POSTGRES_ENV}")

NOW = datetime.now(UTC).replace(microsecond=0)
ISSUER = "https://idp.example.org"
#: the ping of the PostgreSQL dialects: an empty statement (``DefaultDialect.do_ping``)
PING = '";"'


class Wire:
    """The messages the engine's connections exchange with the server while ``watching`` is open."""

    def __init__(self, engine: Engine) -> None:
        self._traced: list[tuple[Any, IO[str]]] = []
        self.lines: list[str] = []
        self._on = False
        # first of the checkout listeners, so that a ping made at checkout is on the wire too
        event.listen(engine, "checkout", self._checkout, insert=True)

    def _checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if not self._on or any(connection is dbapi_connection for connection, _ in self._traced):
            return
        from psycopg import pq

        # one file per connection (libpq buffers each trace apart), closed when ``watching`` ends
        trace = tempfile.TemporaryFile("w+")  # noqa: SIM115
        dbapi_connection.pgconn.trace(os.dup(trace.fileno()))
        dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        self._traced.append((dbapi_connection, trace))

    @contextmanager
    def watching(self) -> Iterator[Wire]:
        self.lines, self._traced, self._on = [], [], True
        try:
            yield self
        finally:
            self._on = False
            for connection, trace in self._traced:
                if not connection.closed:
                    connection.pgconn.untrace()  # flushes libpq's buffer into the file
                trace.seek(0)
                self.lines += trace.read().splitlines()
                trace.close()

    @property
    def round_trips(self) -> int:
        return sum(1 for line in self.lines if line.startswith("B") and "\tReadyForQuery" in line)

    @property
    def sent(self) -> list[str]:
        """The statements the client sent, as simple queries (``BEGIN``, ``ROLLBACK``) or parsed ones."""
        fields = [line.split("\t", 3) for line in self.lines if line.startswith("F")]
        return [field[3].strip() for field in fields if len(field) == 4 and field[2] in ("Query", "Parse")]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def postgres_url() -> Iterator[str]:
    for url in postgres_schema(os.environ[POSTGRES_ENV]):
        upgrade(url)
        yield url


def _identity(subject: str) -> UpstreamIdentity:
    return UpstreamIdentity(upstream="example-idp", issuer=ISSUER, subject=subject,
                            claims={"email": f"{subject}@example.org"}, acr="urn:example:loa:2", auth_time=NOW)


def _accounts(engine: Engine) -> tuple[SqlAccountStore, str]:
    store = SqlAccountStore(engine, Sealer([secrets.token_bytes(32)]))
    account, created = store.create_with_identity(_identity("anna"), NOW)
    assert created
    return store, account.account_id


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


@pytest.fixture
def clocked(postgres_url: str) -> Iterator[tuple[Engine, FakeClock]]:
    """An engine made as ``create_engine_for`` makes it, but whose pool reads ``FakeClock``."""
    clock = FakeClock()
    engine = create_engine(make_url(postgres_url), **engine_options(postgres_url))
    ping_when_idle(engine, clock=clock)
    yield engine, clock
    engine.dispose()


def test_a_read_is_one_round_trip_and_a_write_keeps_its_transaction(postgres_url: str) -> None:
    engine = create_engine_for(postgres_url)
    wire = Wire(engine)
    try:
        store, account_id = _accounts(engine)
        assert store.find_by_identity(ISSUER, "anna") is not None  # the pool holds a connection in use

        with wire.watching():
            found = store.find_by_identity(ISSUER, "anna")
        assert found is not None and found.account_id == account_id
        assert wire.round_trips == 1, wire.lines
        assert len(wire.sent) == 1 and wire.sent[0].startswith('"" "SELECT accounts.'), wire.sent

        # what every read cost before issue 21 (pool_pre_ping aside): BEGIN, SELECT, ROLLBACK. After an autocommit
        # read SQLAlchemy gives the connection its default level back by name, so psycopg's BEGIN names it.
        with wire.watching(), session_factory(engine)() as session:
            assert session.get(AccountRow, account_id) is not None
        assert wire.round_trips == 3 and wire.sent[0].startswith('"BEGIN') and wire.sent[-1] == '"ROLLBACK"', wire.sent

        # a write still runs in its transaction
        with wire.watching():
            store.record_use(account_id, _identity("anna"), NOW)
        assert wire.sent[0].startswith('"BEGIN') and wire.sent[-1] == '"COMMIT"', wire.sent
    finally:
        engine.dispose()


def test_a_connection_in_steady_use_is_not_pinged_a_rested_one_is(clocked: tuple[Engine, FakeClock]) -> None:
    engine, clock = clocked
    wire = Wire(engine)
    store, _ = _accounts(engine)
    for _ in range(3):
        clock.now += IDLE_PING_AFTER - 1
        with wire.watching():
            assert store.find_by_identity(ISSUER, "anna") is not None
        assert wire.round_trips == 1 and PING not in wire.sent, wire.sent

    clock.now += IDLE_PING_AFTER + 1
    with wire.watching():
        assert store.find_by_identity(ISSUER, "anna") is not None
    assert wire.round_trips == 2 and wire.sent[0] == PING, wire.sent


def _terminate(postgres_url: str, pid: int) -> None:
    """End the server process of a pooled connection, as a restart or an idle timeout of a proxy would."""
    admin = create_engine_for(postgres_url)
    try:
        with admin.connect() as connection:  # waits (5 s at most) until the process has ended
            assert connection.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar_one()
    finally:
        admin.dispose()


def test_a_connection_dropped_while_resting_is_replaced_unseen(postgres_url: str,
                                                                clocked: tuple[Engine, FakeClock]) -> None:
    engine, clock = clocked
    store, account_id = _accounts(engine)
    before = _backend_pid(engine)
    _terminate(postgres_url, before)
    clock.now += IDLE_PING_AFTER + 1

    found = store.find_by_identity(ISSUER, "anna")  # the ping fails: a new connection carries the read

    assert found is not None and found.account_id == account_id
    assert _backend_pid(engine) != before


def test_a_connection_dropped_in_steady_use_fails_one_call_only(postgres_url: str,
                                                                 clocked: tuple[Engine, FakeClock]) -> None:
    """The price of not pinging a busy connection: the call that meets the broken connection fails (the web
    layer answers it with the outage page), and SQLAlchemy retires the pool, so the next call succeeds."""
    engine, clock = clocked
    store, _ = _accounts(engine)
    _terminate(postgres_url, _backend_pid(engine))
    clock.now += 1

    with pytest.raises(OperationalError) as failed:
        store.find_by_identity(ISSUER, "anna")
    assert failed.value.connection_invalidated

    assert store.find_by_identity(ISSUER, "anna") is not None


def test_reads_see_what_was_just_committed(postgres_url: str) -> None:
    """Autocommit reads share the pool with writing sessions: nothing a write committed is hidden from them."""
    engine = create_engine_for(postgres_url)
    try:
        store, account_id = _accounts(engine)
        assert store.identities(account_id)[0].subject == "anna"
        assert store.set_disabled(account_id, NOW, "test")
        account = store.get(account_id)
        assert account is not None and account.disabled_at is not None
        with engine.connect() as connection:  # and the pool gives writing sessions their transactions back
            assert connection.execute(select(AccountRow.account_id)).scalar_one() == account_id
            assert connection.in_transaction() and connection.get_isolation_level() != "AUTOCOMMIT"
    finally:
        engine.dispose()

