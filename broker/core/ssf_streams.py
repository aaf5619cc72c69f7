"""The event streams apps configure at the broker's Shared Signals transmitter (SSF 1.0 §8.1; issue 18): what one
stream is and the port that keeps them (``broker.storage.ssf_streams``). The transmitter itself is
``broker.downstream.ssf``; the journeys see it as ``core.security_events.SecurityEvents``.

A stream belongs to one registered OpenID client (``client_id``, the SETs' ``aud``): only that client reads,
changes or deletes it. ``authorization_header`` is the receiver's secret for its push endpoint (RFC 8935 §2):
sealed at rest, never logged, never echoed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class StreamStatus(StrEnum):
    """SSF 1.0 §8.1.2: the values are stored and sent."""

    ENABLED = "enabled"  # events are sent
    PAUSED = "paused"  # events are held, and sent once the stream is enabled again (broker.downstream.ssf)
    DISABLED = "disabled"  # no event is sent, none kept (those held while paused are dropped)


@dataclass(frozen=True)
class SsfStream:
    """One push stream (RFC 8935) of one client."""

    stream_id: str
    client_id: str
    #: the event type URIs the receiver asked for (``events_requested``), as it sent them
    events_requested: tuple[str, ...]
    #: those the broker sends (``events_delivered``): the requested ones it supports
    events_delivered: tuple[str, ...]
    endpoint_url: str
    status: StreamStatus
    created_at: datetime
    updated_at: datetime
    authorization_header: str | None = field(default=None, repr=False)
    description: str | None = None
    #: why the status was last set (SSF 1.0 §8.1.2.2 ``reason``)
    status_reason: str | None = None
    #: when the receiver last asked for a verification event (§8.1.4.2), for ``min_verification_interval``
    verified_at: datetime | None = None


class SsfStreamStore(Protocol):
    """Streams in the database: every broker instance sees the same ones."""

    def add(self, stream: SsfStream, limit: int) -> bool:
        """Store a new stream unless its client has ``limit`` streams already (False, nothing stored)."""
        ...

    def get(self, stream_id: str) -> SsfStream | None: ...

    def of_client(self, client_id: str) -> Sequence[SsfStream]:
        """The client's streams, oldest first."""
        ...

    def enabled_for(self, client_ids: Sequence[str], event: str) -> Sequence[SsfStream]:
        """The enabled streams of these clients that deliver ``event``."""
        ...

    def receiving(self, client_ids: Sequence[str], event: str) -> Sequence[SsfStream]:
        """The enabled and the paused streams of these clients that deliver ``event`` (SSF 1.0 §8.1.2: a paused
        stream holds the event until it is enabled again), oldest first."""
        ...

    def replace(self, stream: SsfStream) -> bool:
        """Write every member of an existing stream (same ``stream_id`` and ``client_id``); False when it is gone."""
        ...

    def remove(self, stream_id: str, client_id: str) -> bool: ...

    def verification_due(self, stream_id: str, now: datetime, not_before: datetime) -> bool:
        """Record a verification request at ``now`` unless one was recorded after ``not_before`` (False)."""
        ...
