"""The worker's loop (``broker.delivery.worker.run_worker``): its own engine from the settings, passes until told
to stop, a stop that ends the wait at once, and a refusal to start on an old schema."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy.exc import OperationalError

from broker.config.settings import Settings, load_settings
from broker.delivery.worker import PassReport, WorkerError, run_worker
from broker.instance import InstanceOptions, init_instance
from broker.storage import SqlOutbox, create_engine_for
from broker.storage.migrate import alembic_config
from tests.delivery.receiver_support import Receiver, loopback_post, message

AT = datetime.now(UTC).replace(microsecond=0)  # the tests' own clock: no test depends on a date


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(init_instance(InstanceOptions(tmp_path / "instance", database_url=database_url)),
                         environ={})


def _enqueue(settings: Settings, receiver: Receiver, *jtis: str) -> None:
    engine = create_engine_for(settings.database_url)  # the web process's engine, not the worker's
    try:
        for jti in jtis:
            assert SqlOutbox(engine).enqueue(message(receiver, jti), AT)
    finally:
        engine.dispose()


def test_one_pass(settings: Settings, receiver: Receiver) -> None:
    _enqueue(settings, receiver, "a", "b")
    report = run_worker(settings, threading.Event(), once=True, http_post=loopback_post(), clock=lambda: AT)
    assert report == PassReport(claimed=2, delivered=2)
    assert len(receiver.received) == 2


def test_the_loop_runs_until_stopped_and_the_stop_ends_its_wait(settings: Settings, receiver: Receiver) -> None:
    stop, result = threading.Event(), []
    thread = threading.Thread(target=lambda: result.append(run_worker(
        settings, stop, http_post=loopback_post(), clock=lambda: AT, poll_seconds=0.05)))
    thread.start()
    try:
        _enqueue(settings, receiver, "a")  # queued while the worker runs: it picks it up on a later pass
        deadline = time.monotonic() + 30
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive() and result[0].delivered == 1
    assert receiver.accepted == {"logout_token=token-permits-a": 1}


def test_a_long_poll_is_cut_short_by_stop(settings: Settings) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=run_worker, args=(settings, stop), kwargs={"poll_seconds": 300})
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive() and time.monotonic() - started < 5


def test_max_passes_bounds_the_loop_and_old_messages_are_purged(settings: Settings, receiver: Receiver) -> None:
    _enqueue(settings, receiver, "a")
    post = loopback_post()
    clock = iter([AT, AT + timedelta(days=8)])
    report = run_worker(settings, threading.Event(), http_post=post, clock=lambda: next(clock), poll_seconds=0.01,
                        max_passes=2)
    assert report == PassReport(claimed=1, delivered=1, purged=1)


def test_the_worker_refuses_an_old_schema(settings: Settings) -> None:
    engine = create_engine_for(settings.database_url)
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0012")
    finally:
        engine.dispose()
    with pytest.raises(WorkerError, match="broker migrate"):
        run_worker(settings, threading.Event(), once=True)


def test_a_database_outage_is_logged_and_the_loop_goes_on(settings: Settings, receiver: Receiver,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    _enqueue(settings, receiver, "a")
    outage = OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))
    answers: Iterator[datetime | Exception] = iter([outage, AT])

    def clock() -> datetime:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    with caplog.at_level(logging.WARNING, logger="broker.delivery"):
        report = run_worker(settings, threading.Event(), http_post=loopback_post(), clock=clock,
                            poll_seconds=0.01, max_passes=2)
    assert report == PassReport(claimed=1, delivered=1)
    assert "outbox: database unavailable (OperationalError); next pass in 0.01 s" in caplog.messages

    def down() -> datetime:
        raise outage

    with pytest.raises(OperationalError):  # one pass (broker worker --once) reports it: exit 1
        run_worker(settings, threading.Event(), once=True, clock=down)
