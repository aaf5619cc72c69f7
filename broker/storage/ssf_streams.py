"""Shared Signals event streams in SQL (``broker.core.ssf_streams.SsfStreamStore``; issue 18): table ``ssf_streams``.

The receiver's ``authorization_header`` is sealed (``broker.storage.sealing``, AES-256-GCM) with the associated
data ``("ssf_streams", "authorization_header", stream id, client id)``: it does not open in another stream's row;
a value that does not open reads as no header (logged without the value), so the stream keeps working and its
owner can set the header again. Event lists are JSON arrays. A verification request is recorded by an ``UPDATE
... WHERE verified_at IS NULL OR verified_at <= :not_before`` whose row count decides, so two requests at once
make one verification event, on PostgreSQL as on SQLite.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, delete, func, or_, select, update

from broker.core.ssf_streams import SsfStream, SsfStreamStore, StreamStatus
from broker.storage.db import reader_factory, rowcount, session_factory
from broker.storage.delivery_tables import SsfStreamRow
from broker.storage.sealing import Sealer, UnreadableValue, is_legacy

log = logging.getLogger(__name__)
_row = SsfStreamRow


class SqlSsfStreams:
    """The streams on ``engine``; ``sealer`` seals each receiver's authorization header."""

    def __init__(self, engine: Engine, sealer: Sealer) -> None:
        self._sessions = session_factory(engine)
        self._reads = reader_factory(engine)  # no transaction: one round trip per read
        self._sealer = sealer

    def _context(self, stream_id: str, client_id: str) -> tuple[str, ...]:
        return ("ssf_streams", "authorization_header", stream_id, client_id)

    def _sealed(self, stream: SsfStream) -> str | None:
        if stream.authorization_header is None:
            return None
        return self._sealer.seal(stream.authorization_header, self._context(stream.stream_id, stream.client_id))

    def _values(self, stream: SsfStream) -> dict[str, object]:
        return {
            "client_id": stream.client_id,
            "events_requested": json.dumps(list(stream.events_requested)),
            "events_delivered": json.dumps(list(stream.events_delivered)),
            "endpoint_url": stream.endpoint_url, "authorization_header": self._sealed(stream),
            "description": stream.description, "status": stream.status.value,
            "status_reason": stream.status_reason, "created_at": stream.created_at,
            "updated_at": stream.updated_at, "verified_at": stream.verified_at,
        }

    def add(self, stream: SsfStream, limit: int) -> bool:
        """The count and the insert share one transaction; two creations racing may both pass (one stream over)."""
        with self._sessions.begin() as session:
            count = session.scalar(select(func.count()).select_from(_row).where(_row.client_id == stream.client_id))
            if (count or 0) >= limit:
                return False
            session.add(SsfStreamRow(stream_id=stream.stream_id, **self._values(stream)))
            return True

    def get(self, stream_id: str) -> SsfStream | None:
        with self._reads() as session:
            row = session.get(_row, stream_id)
            return self._stream(row) if row is not None else None

    def of_client(self, client_id: str) -> Sequence[SsfStream]:
        query = select(_row).where(_row.client_id == client_id).order_by(_row.created_at, _row.stream_id)
        with self._reads() as session:
            return [self._stream(row) for row in session.scalars(query)]

    def enabled_for(self, client_ids: Sequence[str], event: str) -> Sequence[SsfStream]:
        return self._delivering(client_ids, event, (StreamStatus.ENABLED,))

    def receiving(self, client_ids: Sequence[str], event: str) -> Sequence[SsfStream]:
        return self._delivering(client_ids, event, (StreamStatus.ENABLED, StreamStatus.PAUSED))

    def _delivering(self, client_ids: Sequence[str], event: str,
                    statuses: tuple[StreamStatus, ...]) -> Sequence[SsfStream]:
        if not client_ids:
            return []
        query = (select(_row).where(_row.client_id.in_(list(client_ids)),
                                    _row.status.in_([status.value for status in statuses]))
                 .order_by(_row.created_at, _row.stream_id))
        with self._reads() as session:
            streams = [self._stream(row) for row in session.scalars(query)]
        return [stream for stream in streams if event in stream.events_delivered]

    def replace(self, stream: SsfStream) -> bool:
        values = self._values(stream)
        values.pop("created_at")
        statement = (update(_row).where(_row.stream_id == stream.stream_id, _row.client_id == stream.client_id)
                     .values(**values))
        with self._sessions.begin() as session:
            return rowcount(session.execute(statement)) == 1

    def remove(self, stream_id: str, client_id: str) -> bool:
        statement = delete(_row).where(_row.stream_id == stream_id, _row.client_id == client_id)
        with self._sessions.begin() as session:
            return rowcount(session.execute(statement)) == 1

    def verification_due(self, stream_id: str, now: datetime, not_before: datetime) -> bool:
        statement = (update(_row)
                     .where(_row.stream_id == stream_id,
                            or_(_row.verified_at.is_(None), _row.verified_at <= not_before))
                     .values(verified_at=now))
        with self._sessions.begin() as session:
            return rowcount(session.execute(statement)) == 1

    def _stream(self, row: SsfStreamRow) -> SsfStream:
        return SsfStream(
            stream_id=row.stream_id, client_id=row.client_id,
            events_requested=tuple(json.loads(row.events_requested)),
            events_delivered=tuple(json.loads(row.events_delivered)),
            endpoint_url=row.endpoint_url, status=StreamStatus(row.status),
            created_at=row.created_at, updated_at=row.updated_at,
            authorization_header=self._opened(row), description=row.description,
            status_reason=row.status_reason, verified_at=row.verified_at,
        )

    def _opened(self, row: SsfStreamRow) -> str | None:
        stored = row.authorization_header
        if stored is None:
            return None
        if is_legacy(stored):  # never written plain: someone wrote the database
            log.warning("ssf stream %s: its authorization header is not sealed and is ignored", row.stream_id)
            return None
        try:
            return self._sealer.open(stored, self._context(row.stream_id, row.client_id))
        except UnreadableValue as exc:
            log.warning("ssf stream %s: its authorization header cannot be opened and is ignored: %s",
                        row.stream_id, exc)
            return None


_check: type[SsfStreamStore] = SqlSsfStreams
