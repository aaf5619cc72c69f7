"""Messages the broker owes other parties, sent after the request that caused them (issue 18): OpenID Connect
back-channel logout tokens (Back-Channel Logout 1.0 §2.5) and Security Event Tokens pushed to event streams
(RFC 8417, RFC 8935).

A journey never calls a receiver: it puts the message in the ``Outbox``, in the database, and a delivery worker
beside the web workers (``broker worker``, ``broker.delivery``) sends it, retries it with back-off while the
receiver fails, and moves it to a dead-letter state the operator sees when it keeps failing. So a receiver that is
down slows no login, a restart loses nothing queued, and two broker instances (or two workers) send each message
once: a message is claimed for a lease before it is sent, and ``(receiver, jti)`` is unique, so the same event is
never queued twice for one receiver (receivers de-duplicate by ``jti`` as well: delivery is at least once across a
worker that dies mid-send, at most once otherwise).

A message may be queued *held* (``enqueue(..., held=True)``): it waits, never claimed, until its receiver is ready
(``release_held``: due now, in the order it was queued) or no longer wants it (``drop_held``: deleted, never
sent). The SSF transmitter holds the events of a paused stream this way (SSF 1.0 §8.1.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol


class MessageState(StrEnum):
    """Where a message is; the values are stored."""

    PENDING = "pending"  # waiting for its next attempt (``next_attempt_at``)
    HELD = "held"  # queued, not to be sent until released (``Outbox.release_held``); never claimed
    DELIVERED = "delivered"  # the receiver answered 2xx
    DEAD = "dead"  # failed ``MAX_ATTEMPTS`` times, or refused for good: the operator's to look at


@dataclass(frozen=True)
class OutgoingMessage:
    """One HTTP POST owed to one receiver.

    ``receiver`` names who gets it (an OIDC client's ``client_id``, an event stream's id) and ``jti`` the event (a
    logout token's or SET's ``jti``): together unique. ``kind`` says what it is for the operator ("backchannel-
    logout", "ssf-event"); ``body`` is sent as is with ``content_type``."""

    receiver: str
    jti: str
    kind: str
    url: str
    body: str
    content_type: str
    #: the ``Authorization`` header value the receiver asked to be sent (RFC 8935 §2: an SSF stream's
    #: ``authorization_header``); sealed at rest, never logged, None for none
    authorization: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class QueuedMessage:
    """A message as the outbox holds it."""

    message_id: str
    message: OutgoingMessage
    state: MessageState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_error: str | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True)
class OutboxStatus:
    counts: tuple[tuple[MessageState, int], ...]
    oldest_pending: datetime | None


class Outbox(Protocol):
    """The durable queue of outgoing messages (``broker.storage.outbox``)."""

    def enqueue(self, message: OutgoingMessage, now: datetime, held: bool = False) -> bool:
        """Queue ``message`` for delivery now, or ``held`` until ``release_held``; False (nothing queued) when this
        receiver already has this ``jti``. Part of the caller's unit of work only in the sense that it is committed
        before it returns."""
        ...

    def claim(self, now: datetime, limit: int, lease: timedelta) -> Sequence[QueuedMessage]:
        """Up to ``limit`` pending (never held) messages due at ``now``, oldest first, each leased to this caller until
        ``now + lease`` (no other caller gets it meanwhile; a worker that dies leaves it to be claimed again
        when the lease ends). Two callers at once never get the same message."""
        ...

    def delivered(self, message_id: str, now: datetime) -> None:
        """The receiver took it: never sent again."""
        ...

    def failed(self, message_id: str, now: datetime, error: str, retry_at: datetime | None) -> None:
        """This attempt failed (``error``: short, no secrets); try again at ``retry_at``, or give up (dead
        letter) when None."""
        ...

    def find(self, message_id: str) -> QueuedMessage | None:
        ...

    def listing(self, state: MessageState, limit: int = 50) -> Sequence[QueuedMessage]:
        """Messages in ``state``, newest first (the operator's view: ``broker outbox``)."""
        ...

    def retry_dead(self, message_id: str, now: datetime) -> bool:
        """Put a dead letter back in the queue, due now (the operator fixed the receiver); False when it is
        not a dead letter."""
        ...

    def status(self) -> OutboxStatus:
        """How many messages are in each state, and when the oldest pending one was queued (the operator's
        metrics: a growing backlog or an old message means a worker is down or a receiver keeps failing)."""
        ...

    def held_count(self, receiver: str) -> int:
        """How many messages ``receiver`` has held."""
        ...

    def release_held(self, receiver: str, now: datetime) -> int:
        """Make ``receiver``'s held messages pending, due at ``now`` (claimed oldest first, as queued); how many."""
        ...

    def drop_held(self, receiver: str) -> int:
        """Delete ``receiver``'s held messages: never sent; how many."""
        ...
