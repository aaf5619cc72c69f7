"""The tables of messages owed to other parties (issue 18): the outbox the delivery worker sends from, and the
event streams apps configure (Shared Signals). Same declarative ``Base`` as ``broker.storage.tables``; the
package (``broker.storage``) imports this module, so the metadata migrations compare against has them too."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from broker.storage.tables import Base, UTCDateTime


class OutboxMessageRow(Base):
    """A message owed to another party (``broker.core.outbox``; issue 18): a back-channel logout token or a Security
    Event Token, sent by the delivery worker (``broker.storage.outbox``, ``broker.delivery``). ``(receiver, jti)``
    is unique: one event is queued at most once per receiver. ``body`` holds a signed token: never logged."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        UniqueConstraint("receiver", "jti", name="uq_outbox_messages_receiver_jti"),
        Index("ix_outbox_messages_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_outbox_messages_state_created_at", "state", "created_at"),
        Index("ix_outbox_messages_delivered_at", "delivered_at"),
    )

    #: a random UUID (text)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    receiver: Mapped[str] = mapped_column(String(255), nullable=False)
    jti: Mapped[str] = mapped_column(String(255), nullable=False)
    #: what it is for the operator: "backchannel-logout", "ssf-event"
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    content_type: Mapped[str] = mapped_column(String(255), nullable=False)
    #: the ``Authorization`` header to send, sealed (``broker.storage.sealing``); None for none
    authorization_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: ``broker.core.outbox.MessageState`` value: pending, held, delivered or dead
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    #: how many times a worker claimed it to send it (the attempt in progress included)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    #: a worker holds it until then (``SqlOutbox.claim``); NULL when no worker does
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: why the last attempt failed, short ("HTTP 503", "connection failed: ConnectTimeout"): never a token
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SsfStreamRow(Base):
    """An event stream an app configured at the Shared Signals transmitter (``broker.core.ssf_streams``; issue 18).
    ``authorization_header`` is sealed (``broker.storage.sealing``): the receiver's secret, never logged; the event
    lists are JSON arrays of event type URIs."""

    __tablename__ = "ssf_streams"
    __table_args__ = (Index("ix_ssf_streams_client_id", "client_id"),)

    stream_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(255), nullable=False)
    events_requested: Mapped[str] = mapped_column(Text, nullable=False)
    events_delivered: Mapped[str] = mapped_column(Text, nullable=False)
    endpoint_url: Mapped[str] = mapped_column(Text, nullable=False)
    authorization_header: Mapped[str | None] = mapped_column(Text, nullable=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: ``broker.core.ssf_streams.StreamStatus`` value: enabled, paused or disabled
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    status_reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    #: when the receiver last asked for a verification event (SSF 1.0 §8.1.4.2)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
