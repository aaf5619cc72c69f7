"""Delivery that survives faults (issue 18), over real HTTP to a receiver on 127.0.0.1 and the SQL outbox on
SQLite and PostgreSQL: a receiver that is down and comes back gets each message once; a broker restarted with
messages queued loses none; two workers on one database send each message once. The clock is passed in, so the
back-off is crossed without sleeping."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from broker.core.outbox import MessageState
from broker.delivery.worker import LEASE, PassReport, deliver_due
from broker.storage import SqlOutbox, create_engine_for
from tests.delivery.receiver_support import Receiver, loopback_post, message

AT = datetime.now(UTC).replace(microsecond=0)  # the tests' own clock: no test depends on a date


def _no_jitter() -> float:
    return 0.0


def test_receiver_down_then_back_gets_the_message_once(engine: Engine, receiver: Receiver) -> None:
    outbox, post = SqlOutbox(engine), loopback_post()
    assert outbox.enqueue(message(receiver, "logout-1"), AT)
    receiver.stop()  # down: the connection is refused

    assert deliver_due(outbox, post, AT, rand=_no_jitter) == PassReport(claimed=1, retried=1)
    (pending,) = outbox.listing(MessageState.PENDING)
    assert pending.last_error == "connection failed (ConnectionError)"
    assert pending.next_attempt_at == AT + timedelta(seconds=30)

    receiver.start()  # back, on the same port
    assert deliver_due(outbox, post, AT + timedelta(seconds=29), rand=_no_jitter) == PassReport()  # not yet due
    assert deliver_due(outbox, post, AT + timedelta(seconds=30), rand=_no_jitter) == PassReport(claimed=1,
                                                                                                delivered=1)
    for hours in (1, 2, 24):  # later passes send nothing more
        assert deliver_due(outbox, post, AT + timedelta(hours=hours)) == PassReport()
    assert receiver.received == ["logout_token=token-permits-logout-1"]
    assert receiver.accepted == {"logout_token=token-permits-logout-1": 1}
    (delivered,) = outbox.listing(MessageState.DELIVERED)
    assert delivered.attempts == 2 and delivered.delivered_at == AT + timedelta(seconds=30)


def test_receiver_answering_503_then_200_accepts_the_message_once(engine: Engine, receiver: Receiver) -> None:
    outbox, post = SqlOutbox(engine), loopback_post()
    outbox.enqueue(message(receiver, "logout-1"), AT)
    receiver.status = 503
    now = AT
    for _ in range(2):
        assert deliver_due(outbox, post, now, rand=_no_jitter).retried == 1
        now += timedelta(hours=1)
    receiver.status = 200
    assert deliver_due(outbox, post, now).delivered == 1
    assert deliver_due(outbox, post, now + timedelta(hours=2)) == PassReport()
    assert len(receiver.received) == 3 and receiver.accepted == {"logout_token=token-permits-logout-1": 1}


def test_broker_restarted_with_messages_queued_loses_none(database_url: str, receiver: Receiver) -> None:
    """The web process queues messages and stops; a worker that had claimed one dies mid-send. A new process
    (its own engine from the same URL) delivers every message, once."""
    web = create_engine_for(database_url)
    jtis = [f"logout-{i}" for i in range(7)]
    for i, jti in enumerate(jtis):
        assert SqlOutbox(web).enqueue(message(receiver, jti), AT + timedelta(seconds=i))
    dying = create_engine_for(database_url)
    (orphan,) = SqlOutbox(dying).claim(AT + timedelta(minutes=1), 1, LEASE)  # and never says how it went
    web.dispose()
    dying.dispose()

    restarted = create_engine_for(database_url)
    try:
        outbox, post, now = SqlOutbox(restarted), loopback_post(), AT + timedelta(minutes=1)
        assert deliver_due(outbox, post, now, batch=10) == PassReport(claimed=6, delivered=6)
        assert deliver_due(outbox, post, now + LEASE, batch=10) == PassReport(claimed=1, delivered=1)  # the orphan
        assert deliver_due(outbox, post, now + timedelta(days=1), batch=10) == PassReport()
        assert len(outbox.listing(MessageState.DELIVERED)) == 7
        assert outbox.listing(MessageState.PENDING) == [] and outbox.listing(MessageState.DEAD) == []
    finally:
        restarted.dispose()
    assert orphan.message.jti == "logout-0"
    assert sorted(receiver.received) == sorted(f"logout_token=token-permits-{jti}" for jti in jtis)
    assert set(receiver.accepted.values()) == {1}


def test_two_workers_on_one_database_send_each_message_once(database_url: str, receiver: Receiver) -> None:
    """Two broker instances, each with its own engine and worker, run passes at the same time in small batches."""
    engines = [create_engine_for(database_url) for _ in range(3)]
    count = 40
    for i in range(count):
        for client in ("permits", "parking"):  # the same event for two receivers: two messages
            assert SqlOutbox(engines[2]).enqueue(message(receiver, f"e{i}", client), AT)
    start = threading.Barrier(2)
    reports: list[PassReport] = [PassReport(), PassReport()]
    failures: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            outbox, post = SqlOutbox(engines[index]), loopback_post()
            start.wait(timeout=30)
            for _ in range(200):  # bounded: 80 messages in batches of 3 take at most 27 passes in all
                report = deliver_due(outbox, post, AT + timedelta(seconds=1), batch=3)
                reports[index] += report
                if report.claimed == 0:
                    return
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        for each in engines:
            each.dispose()
    assert not failures, failures
    assert not any(thread.is_alive() for thread in threads)
    assert len(receiver.received) == 2 * count, "every message sent, none twice"
    assert set(receiver.accepted.values()) == {1} and len(receiver.accepted) == 2 * count
    assert reports[0].delivered + reports[1].delivered == 2 * count
