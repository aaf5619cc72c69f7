"""Held messages in the SQL outbox (``broker.storage.outbox``; issue 18, SSF 1.0 §8.1.2), on SQLite and
PostgreSQL: a held message is never claimed; ``release_held`` makes one receiver's held messages due, in the order
they were queued; ``drop_held`` deletes them; neither touches another receiver's messages or other states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from broker.core.outbox import MessageState, OutgoingMessage
from broker.storage import SqlOutbox

NOW = datetime.now(UTC).replace(microsecond=0)
LEASE = timedelta(minutes=5)


def _message(jti: str, receiver: str = "stream-1") -> OutgoingMessage:
    return OutgoingMessage(receiver=receiver, jti=jti, kind="ssf-event", url=f"https://{receiver}.example.org/ssf",
                           body=f"set-{jti}", content_type="application/secevent+jwt")


def _states(outbox: SqlOutbox, receiver: str) -> dict[str, MessageState]:
    return {m.message.jti: m.state for state in MessageState for m in outbox.listing(state, 100)
            if m.message.receiver == receiver}


def test_a_held_message_is_never_claimed(engine: Engine) -> None:
    outbox = SqlOutbox(engine)
    assert outbox.enqueue(_message("h1"), NOW, held=True)
    assert outbox.enqueue(_message("p1"), NOW + timedelta(seconds=1))
    assert not outbox.enqueue(_message("h1"), NOW, held=True)  # (receiver, jti) unique, held or not
    later = NOW + timedelta(days=30)
    (claimed,) = outbox.claim(later, 10, LEASE)
    assert claimed.message.jti == "p1"
    outbox.delivered(claimed.message_id, later)
    assert outbox.claim(later + timedelta(days=30), 10, LEASE) == []  # h1 is never due
    (held,) = outbox.listing(MessageState.HELD)
    assert (held.message.jti, held.state, held.attempts) == ("h1", MessageState.HELD, 0)
    assert outbox.held_count("stream-1") == 1 and outbox.held_count("stream-2") == 0


def test_release_makes_one_receivers_held_messages_due_in_the_order_they_were_queued(engine: Engine) -> None:
    outbox = SqlOutbox(engine)
    for i, jti in enumerate(["b", "a", "c"]):
        assert outbox.enqueue(_message(jti), NOW + timedelta(seconds=i), held=True)
    assert outbox.enqueue(_message("other", receiver="stream-2"), NOW, held=True)
    released_at = NOW + timedelta(hours=1)
    assert outbox.release_held("stream-1", released_at) == 3
    assert outbox.release_held("stream-1", released_at) == 0  # nothing held any more
    assert outbox.claim(released_at - timedelta(seconds=1), 10, LEASE) == []  # due when released, not before
    claimed = outbox.claim(released_at, 10, LEASE)
    assert [m.message.jti for m in claimed] == ["b", "a", "c"]  # oldest first, as queued
    assert all(m.attempts == 1 for m in claimed)
    assert _states(outbox, "stream-2") == {"other": MessageState.HELD}  # another receiver's: still held
    assert outbox.held_count("stream-2") == 1


def test_drop_deletes_only_the_receivers_held_messages(engine: Engine) -> None:
    outbox = SqlOutbox(engine)
    outbox.enqueue(_message("held-1"), NOW, held=True)
    outbox.enqueue(_message("held-2"), NOW, held=True)
    outbox.enqueue(_message("pending"), NOW)
    outbox.enqueue(_message("dead"), NOW - timedelta(seconds=1))
    outbox.enqueue(_message("other", receiver="stream-2"), NOW, held=True)
    (dying, _) = outbox.claim(NOW, 2, LEASE)
    assert dying.message.jti == "dead"
    outbox.failed(dying.message_id, NOW, "HTTP 400: refused", None)
    assert outbox.drop_held("stream-1") == 2
    assert outbox.drop_held("stream-1") == 0
    assert _states(outbox, "stream-1") == {"pending": MessageState.PENDING, "dead": MessageState.DEAD}
    assert _states(outbox, "stream-2") == {"other": MessageState.HELD}
    assert outbox.release_held("stream-1", NOW) == 0  # a dropped message never comes back


def test_release_refuses_a_naive_time(engine: Engine) -> None:
    outbox = SqlOutbox(engine)
    outbox.enqueue(_message("h1"), NOW, held=True)
    with pytest.raises(ValueError, match="naive"):
        outbox.release_held("stream-1", NOW.replace(tzinfo=None))
    assert outbox.held_count("stream-1") == 1
