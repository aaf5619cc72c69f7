"""Browser sessions stored under a keyed hash of their id, never the id itself (issue 15, point 2).

The session cookie carries a random id (Flask-Session: 256 bits, ``secrets.token_urlsafe``); the server-side
record (a ``browser_sessions`` row, or a Redis key) is found under ``broker:`` + HMAC-SHA256(K, id) in hex
(RFC 2104; FIPS 198-1), where K = HMAC-SHA256(session secret, ``"broker session-id v1"``) is a subkey of the
session secret (``certs/session.secret``) used for nothing else (NIST SP 800-108 §4: one key, one purpose).
A copy of the database or of Redis then holds no cookie value: a stored id set as a cookie is hashed again
and finds nothing, and without the secret no stored id can be turned back into a cookie.

Flask-Session builds every store key in one place, ``_get_store_id`` (opening, saving, and deleting the old
record when the id is regenerated at sign-in and sign-out); the subclasses below override only that.
Sessions stored before this change (under their clear id) are no longer found: those browsers sign in again.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from flask_session.redis import RedisSessionInterface
from flask_session.sqlalchemy import SqlAlchemySessionInterface

#: the label of the session-id subkey (NIST SP 800-108: a distinct label per derived key)
SUBKEY_LABEL = b"broker session-id v1"


def session_id_key(secret: bytes) -> bytes:
    """The subkey of the session secret that hashes session ids."""
    return hmac.new(secret, SUBKEY_LABEL, hashlib.sha256).digest()


def stored_id(key: bytes, sid: str) -> str:
    """What the store holds in place of the session id ``sid``: its HMAC-SHA256 under ``key``, in hex."""
    return hmac.new(key, sid.encode("utf-8"), hashlib.sha256).hexdigest()


class _HashedIds:
    """Mixed in before a Flask-Session interface: its store keys are ``key_prefix`` + ``stored_id``."""

    key_prefix: str
    _id_key: bytes

    def __init__(self, *args: Any, id_key: bytes, **kwargs: Any) -> None:
        self._id_key = id_key
        super().__init__(*args, **kwargs)

    def _get_store_id(self, sid: str) -> str:
        return self.key_prefix + stored_id(self._id_key, sid)


class HashedRedisSessions(_HashedIds, RedisSessionInterface):  # type: ignore[misc]  # flask_session is untyped
    """Browser sessions in Redis, keyed by the hash of their id."""


class HashedSqlSessions(_HashedIds, SqlAlchemySessionInterface):  # type: ignore[misc]  # flask_session is untyped
    """Browser sessions in the ``browser_sessions`` table, keyed by the hash of their id."""
