"""Server-side state of logins in progress, in Redis (``broker.core.ports.PendingStore``).

Used when browser sessions live in Redis (``session_type = "redis"``): a login's short-lived steps then cost no
database transaction at all, and any instance reads what another stored. Each entry is one key,
``<prefix>pending:<kind>:<SHA-256 of the handle>``, so an entry is only ever found under the kind it was stored
as, and its value holds the payload sealed (``broker.storage.pending_seal``): a copy of Redis reveals neither
what a login carries nor a handle to finish it.

- ``put_with_handle``: ``SET ... NX`` (a handle already in use is refused, never overwritten: the replay
  caches for assertion and message IDs rely on it);
- ``peek_many``: one ``MGET`` of the handle's keys under several kinds (the error page's way back);
- ``take``: ``GETDEL``, atomic, so of two concurrent takes exactly one gets the payload;
- expiry: the logical expiry (``expires_at``, compared with the broker's clock, as the SQL store does) travels
  with the payload, and Redis drops the key itself a little after it (``PXAT``), so nothing needs purging.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import redis

from broker.core.pending_kinds import Kind
from broker.core.ports import HandleInUse, PendingStore
from broker.storage.pending_seal import PendingSeal, handle_digest
from broker.storage.sealing import Sealer

#: Redis keeps a key this much longer than its logical expiry (clock skew between instances and Redis)
KEEP_EXTRA = timedelta(minutes=5)
_SEPARATOR = "\n"


class RedisPendingStore:
    def __init__(self, client: redis.Redis, prefix: str, sealer: Sealer) -> None:
        self._redis = client
        self._prefix = prefix
        self._seal = PendingSeal(sealer, "redis")

    def _key(self, kind: Kind, digest: str) -> str:
        return f"{self._prefix}pending:{kind.value}:{digest}"

    def put(self, kind: Kind, payload: str, expires_at: datetime) -> str:
        handle = secrets.token_urlsafe(32)
        self.put_with_handle(kind, handle, payload, expires_at)
        return handle

    def put_with_handle(self, kind: Kind, handle: str, payload: str, expires_at: datetime) -> None:
        keep_until = max(expires_at, datetime.now(UTC)) + KEEP_EXTRA
        digest = handle_digest(handle)
        value = expires_at.isoformat() + _SEPARATOR + self._seal.seal(kind, digest, payload)
        stored = self._redis.set(self._key(kind, digest), value, nx=True, pxat=int(keep_until.timestamp() * 1000))
        if not stored:
            raise HandleInUse(handle[:16])

    def _live(self, kind: Kind, digest: str, raw: object, now: datetime) -> str | None:
        """The payload of a live entry; None when absent, expired or not to be trusted (changed, moved)."""
        if not isinstance(raw, bytes):
            return None
        try:
            expires, _, sealed = raw.decode().partition(_SEPARATOR)
            live = datetime.fromisoformat(expires) > now
        except (UnicodeDecodeError, ValueError, TypeError):  # TypeError: a naive time compared with an aware one
            return None
        return self._seal.open(kind, digest, sealed) if live else None

    def peek(self, kind: Kind, handle: str, now: datetime) -> str | None:
        digest = handle_digest(handle)
        return self._live(kind, digest, self._redis.get(self._key(kind, digest)), now)

    def peek_many(self, kinds: Sequence[Kind], handle: str, now: datetime) -> dict[Kind, str]:
        """One ``MGET`` of the handle's key under each kind."""
        if not kinds:
            return {}
        digest = handle_digest(handle)
        values = self._redis.mget([self._key(kind, digest) for kind in kinds])
        found = {kind: self._live(kind, digest, raw, now) for kind, raw in zip(kinds, values, strict=True)}
        return {kind: payload for kind, payload in found.items() if payload is not None}

    def take(self, kind: Kind, handle: str, now: datetime) -> str | None:
        digest = handle_digest(handle)
        return self._live(kind, digest, self._redis.getdel(self._key(kind, digest)), now)

    def purge_expired(self, now: datetime) -> int:
        """Nothing to do: Redis drops expired keys itself."""
        return 0


_check: type[PendingStore] = RedisPendingStore
