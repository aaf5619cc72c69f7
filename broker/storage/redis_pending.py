"""Server-side state of logins in progress, in Redis (``broker.core.ports.PendingStore``).

Used when browser sessions live in Redis (``session_type = "redis"``): a login's short-lived steps then cost no
database transaction at all, and any instance reads what another stored. Each entry is one key,
``<prefix>pending:<kind>:<handle>``, so an entry is only ever found under the kind it was stored as.

- ``put_with_handle``: ``SET ... NX`` (a handle already in use is refused, never overwritten: the replay
  caches for assertion and message IDs rely on it);
- ``take``: ``GETDEL``, atomic, so of two concurrent takes exactly one gets the payload;
- expiry: the logical expiry (``expires_at``, compared with the broker's clock, as the SQL store does) travels
  with the payload, and Redis drops the key itself a little after it (``PXAT``), so nothing needs purging.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import redis

from broker.core.ports import HandleInUse, PendingStore

#: Redis keeps a key this much longer than its logical expiry (clock skew between instances and Redis)
KEEP_EXTRA = timedelta(minutes=5)
_SEPARATOR = "\n"


class RedisPendingStore:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix

    def _key(self, kind: str, handle: str) -> str:
        return f"{self._prefix}pending:{kind}:{handle}"

    def put(self, kind: str, payload: str, expires_at: datetime) -> str:
        handle = secrets.token_urlsafe(32)
        self.put_with_handle(kind, handle, payload, expires_at)
        return handle

    def put_with_handle(self, kind: str, handle: str, payload: str, expires_at: datetime) -> None:
        keep_until = max(expires_at, datetime.now(UTC)) + KEEP_EXTRA
        stored = self._redis.set(self._key(kind, handle), expires_at.isoformat() + _SEPARATOR + payload, nx=True,
                                 pxat=int(keep_until.timestamp() * 1000))
        if not stored:
            raise HandleInUse(handle[:16])

    @staticmethod
    def _live(raw: bytes | None, now: datetime) -> str | None:
        if raw is None:
            return None
        expires, _, payload = raw.decode().partition(_SEPARATOR)
        return payload if datetime.fromisoformat(expires) > now else None

    def peek(self, kind: str, handle: str, now: datetime) -> str | None:
        raw = self._redis.get(self._key(kind, handle))
        return self._live(raw if isinstance(raw, bytes) else None, now)

    def take(self, kind: str, handle: str, now: datetime) -> str | None:
        raw = self._redis.getdel(self._key(kind, handle))
        return self._live(raw if isinstance(raw, bytes) else None, now)

    def purge_expired(self, now: datetime) -> int:
        """Nothing to do: Redis drops expired keys itself."""
        return 0


_check: type[PendingStore] = RedisPendingStore
