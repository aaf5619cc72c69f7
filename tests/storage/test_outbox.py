"""The outbox in SQL (``broker.storage.outbox``; issue 18) on SQLite and PostgreSQL: one message per (receiver,
jti), claims that lease, never hand one message to two callers, retries, dead letters and the retention purge."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, func, select, update

from broker.core.outbox import MessageState, OutgoingMessage, QueuedMessage
from broker.storage import SqlOutbox, create_engine_for
from broker.storage.delivery_tables import OutboxMessageRow
from broker.storage.outbox import DELIVERED_RETENTION, ERROR_LENGTH
from tests.storage.conftest import NOW

LEASE = timedelta(minutes=5)


def _message(jti: str, receiver: str = "permits") -> OutgoingMessage:
    return OutgoingMessage(receiver=receiver, jti=jti, kind="backchannel-logout",
                           url=f"https://{receiver}.example.org/logout", body=f"logout_token=t-{jti}",
                           content_type="application/x-www-form-urlencoded")


def _jtis(messages: Sequence[QueuedMessage]) -> list[str]:
    return [m.message.jti for m in messages]


def _queued(outbox: SqlOutbox, count: int, start: datetime = NOW) -> None:
    for i in range(count):
        assert outbox.enqueue(_message(f"j{i:03d}"), start + timedelta(seconds=i))


def test_enqueue_once_per_receiver_and_jti(engine: Engine) -> None:
    outbox = SqlOutbox(engine)
    assert outbox.enqueue(_message("a"), NOW) is True
    assert outbox.enqueue(_message("a"), NOW + timedelta(seconds=1)) is False  # the same event again
    assert outbox.enqueue(_message("a", receiver="parking"), NOW) is True  # the same event, another receiver
    (queued,) = [m for m in outbox.listing(MessageState.PENDING) if m.message.receiver == "permits"]
    assert queued.message == _message("a")
    assert (queued.state, queued.attempts, queued.created_at, queued.next_attempt_at) == (
        MessageState.PENDING, 0, NOW, NOW)
    assert queued.last_error is None and queued.delivered_at is None
    assert outbox.find(queued.message_id) == queued
    assert outbox.find("no-such-id") is None


def test_claim_takes_due_messages_oldest_first_and_counts_the_attempt(engine: Engine) -> None:
    outbox = SqlOutbox(engine)
    for i, jti in enumerate(["c", "a", "b"]):  # queued in this order
        outbox.enqueue(_message(jti), NOW + timedelta(seconds=i))
    assert outbox.claim(NOW - timedelta(seconds=1), 10, LEASE) == []  # nothing due yet
    first = outbox.claim(NOW + timedelta(minutes=1), 2, LEASE)
    assert _jtis(first) == ["c", "a"] and [m.attempts for m in first] == [1, 1]
    assert _jtis(outbox.claim(NOW + timedelta(minutes=1), 10, LEASE)) == ["b"]


def test_a_lease_keeps_others_away_until_it_ends(engine: Engine) -> None:
    outbox = SqlOutbox(engine)
    outbox.enqueue(_message("a"), NOW)
    (claimed,) = outbox.claim(NOW, 10, LEASE)
    assert outbox.claim(NOW + LEASE - timedelta(seconds=1), 10, LEASE) == []
    # the worker died: once the lease ends another claims it, and the attempt is counted again
    (again,) = outbox.claim(NOW + LEASE, 10, LEASE)
    assert again.message_id == claimed.message_id and again.attempts == 2


def test_delivered_is_never_claimed_again(engine: Engine) -> None:
    outbox = SqlOutbox(engine)
    outbox.enqueue(_message("a"), NOW)
    (claimed,) = outbox.claim(NOW, 10, LEASE)
    outbox.delivered(claimed.message_id, NOW + timedelta(seconds=2))
    assert outbox.claim(NOW + timedelta(days=1), 10, LEASE) == []
    found = outbox.find(claimed.message_id)
    assert found is not None and found.state is MessageState.DELIVERED
    assert found.delivered_at == NOW + timedelta(seconds=2)
    assert _jtis(outbox.listing(MessageState.DELIVERED)) == ["a"]


def test_a_failed_attempt_waits_for_its_retry_time(engine: Engine) -> None:
    outbox = SqlOutbox(engine)
    outbox.enqueue(_message("a"), NOW)
    (claimed,) = outbox.claim(NOW, 10, LEASE)
    retry = NOW + timedelta(seconds=30)
    outbox.failed(claimed.message_id, NOW, "HTTP 503", retry)
    found = outbox.find(claimed.message_id)
    assert found is not None
    assert (found.state, found.next_attempt_at, found.last_error, found.attempts) == (
        MessageState.PENDING, retry, "HTTP 503", 1)
    assert outbox.claim(retry - timedelta(seconds=1), 10, LEASE) == []
    (again,) = outbox.claim(retry, 10, LEASE)  # the lease was freed by the failure: due again at retry
    assert again.attempts == 2


def test_dead_letters_are_listed_newest_first_and_can_be_retried(engine: Engine) -> None:
    outbox = SqlOutbox(engine)
    _queued(outbox, 3)
    claimed = outbox.claim(NOW + timedelta(minutes=1), 10, LEASE)
    for m in claimed:
        outbox.failed(m.message_id, NOW + timedelta(minutes=1), "HTTP 400: refused " + "x" * 600, None)
    dead = outbox.listing(MessageState.DEAD)
    assert _jtis(dead) == ["j002", "j001", "j000"]
    assert _jtis(outbox.listing(MessageState.DEAD, limit=1)) == ["j002"]
    assert all(m.last_error is not None and len(m.last_error) == ERROR_LENGTH for m in dead)
    assert outbox.claim(NOW + timedelta(days=1), 10, LEASE) == []

    later = NOW + timedelta(hours=2)
    assert outbox.retry_dead(dead[0].message_id, later) is True
    assert outbox.retry_dead(dead[0].message_id, later) is False  # no longer dead
    assert outbox.retry_dead("no-such-id", later) is False
    (back,) = outbox.claim(later, 10, LEASE)
    assert back.message.jti == "j002" and back.attempts == 1  # a fresh count of attempts
    # the outcome of an attempt never revives a dead letter nor undoes a delivery
    outbox.delivered(dead[1].message_id, later)
    found = outbox.find(dead[1].message_id)
    assert found is not None and found.state is MessageState.DEAD


def test_purge_deletes_old_delivered_messages_only_and_a_bounded_number(engine: Engine) -> None:
    outbox = SqlOutbox(engine)
    _queued(outbox, 6)
    claimed = outbox.claim(NOW + timedelta(minutes=1), 10, LEASE)
    for m in claimed[:4]:
        outbox.delivered(m.message_id, NOW + timedelta(minutes=1))
    outbox.failed(claimed[4].message_id, NOW, "HTTP 404: refused", None)  # dead letters stay for the operator
    # the sixth is still pending
    assert outbox.purge_delivered(NOW + DELIVERED_RETENTION) == 0  # not old enough yet
    later = NOW + DELIVERED_RETENTION + timedelta(hours=1)
    assert outbox.purge_delivered(later, limit=3) == 3
    assert outbox.purge_delivered(later, limit=3) == 1
    assert outbox.purge_delivered(later) == 0
    with engine.connect() as connection:
        left = connection.execute(select(OutboxMessageRow.state, func.count()).group_by(OutboxMessageRow.state))
        assert dict(left.all()) == {"dead": 1, "pending": 1}


def test_times_are_timezone_aware_and_naive_ones_refused(engine: Engine) -> None:
    outbox = SqlOutbox(engine)
    paris = timezone(timedelta(hours=1))
    outbox.enqueue(_message("a"), NOW.astimezone(paris))
    (claimed,) = outbox.claim(NOW, 10, LEASE)
    assert claimed.created_at == NOW and claimed.created_at.tzinfo is not None
    naive = NOW.replace(tzinfo=None)
    with pytest.raises(ValueError, match="naive"):
        outbox.enqueue(_message("b"), naive)
    with pytest.raises(ValueError, match="naive"):
        outbox.claim(naive, 10, LEASE)
    with pytest.raises(ValueError, match="naive"):
        outbox.failed(claimed.message_id, NOW, "HTTP 503", naive)


@pytest.mark.parametrize(("limit", "lease"), [(0, LEASE), (1, timedelta(0))])
def test_claim_refuses_an_empty_batch_or_lease(engine: Engine, limit: int, lease: timedelta) -> None:
    with pytest.raises(ValueError, match="positive"):
        SqlOutbox(engine).claim(NOW, limit, lease)


def test_two_callers_claiming_at_once_never_get_the_same_message(database_url: str, engine: Engine) -> None:
    """Two processes' worth of claimers (an engine each) race for the same due messages, in small batches."""
    _queued(SqlOutbox(engine), 60)
    engines = [create_engine_for(database_url) for _ in range(2)]
    got: list[list[str]] = [[], []]
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def claimer(index: int) -> None:
        try:
            outbox = SqlOutbox(engines[index])
            start.wait(timeout=30)
            for _ in range(100):  # bounded: 60 messages in batches of 3 need at most 20 claims in all
                batch = outbox.claim(NOW + timedelta(hours=1), 3, LEASE)
                if not batch:
                    return
                got[index].extend(m.message_id for m in batch)
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(2)]
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
    assert not set(got[0]) & set(got[1]), "a message was claimed twice"
    assert len(got[0]) + len(got[1]) == 60 and len(set(got[0]) | set(got[1])) == 60


def test_the_outbox_rejects_a_non_positive_retention(engine: Engine) -> None:
    with pytest.raises(ValueError, match="positive"):
        SqlOutbox(engine, retention=timedelta(0))


def test_stored_times_are_utc(engine: Engine) -> None:
    outbox = SqlOutbox(engine)
    outbox.enqueue(_message("a"), NOW)
    (claimed,) = outbox.claim(NOW, 1, LEASE)
    assert claimed.next_attempt_at.utcoffset() == timedelta(0) and claimed.created_at.tzinfo is UTC


def test_an_authorization_header_is_sealed_at_rest_and_bound_to_its_message(engine: Engine) -> None:
    import secrets
    from dataclasses import replace

    from broker.storage.sealing import Sealer

    sealer = Sealer([secrets.token_bytes(32)])
    outbox = SqlOutbox(engine, sealer=sealer)
    assert outbox.enqueue(replace(_message("a"), authorization="Bearer s3cret-value"), NOW)
    with engine.connect() as connection:
        stored = connection.scalar(select(OutboxMessageRow.authorization_sealed))
    assert stored and "s3cret-value" not in stored
    [claimed] = outbox.claim(NOW, 10, LEASE)
    assert claimed.message.authorization == "Bearer s3cret-value"
    assert "s3cret-value" not in repr(claimed)  # never in a log line made of the message
    with engine.begin() as connection:  # moved to another message's row: it does not open there
        connection.execute(update(OutboxMessageRow).values(jti="b"))
    [moved] = SqlOutbox(engine, sealer=sealer).listing(MessageState.PENDING)
    assert moved.message.authorization is None
    with pytest.raises(ValueError, match="claims key"):
        SqlOutbox(engine).enqueue(replace(_message("c"), authorization="Bearer x"), NOW)
