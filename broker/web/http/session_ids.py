"""Browser sessions stored under a keyed hash of their id, never the id itself (issue 15, point 2).

The session cookie carries a random id (Flask-Session: 256 bits, ``secrets.token_urlsafe``); the server-side
record (a ``browser_sessions`` row, or a Redis key) is found under ``broker:`` + HMAC-SHA256(K, id) in hex
(RFC 2104; FIPS 198-1), where K = HMAC-SHA256(session secret, ``"broker session-id v1"``) is a subkey of the
session secret (``certs/session.secret``) used for nothing else (NIST SP 800-108 §4: one key, one purpose).
A copy of the database or of Redis then holds no cookie value: a stored id set as a cookie is hashed again
and finds nothing, and without the secret no stored id can be turned back into a cookie.

Flask-Session builds every store key in one place, ``_get_store_id`` (opening, saving, and deleting the old
record when the id is regenerated at sign-in and sign-out); the subclasses below override that, and opening
and saving for the requests below.
Sessions stored before this change (under their clear id) are no longer found: those browsers sign in again.

Requests that need no session (``SESSIONLESS_ENDPOINTS``: static files and the theme's, health checks, metrics) do
not open it even when the browser sends its cookie (issue 21): Flask opens the session before it routes the
request, so without this every stylesheet and logo of a page cost a read of the store (and, with Flask's default
``SESSION_REFRESH_EACH_REQUEST``, a write). They get an empty detached session that is never saved.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from flask import Flask, Request
from flask.wrappers import Response
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


#: endpoints that never read or write the browser's session: files, and the operators' probes
SESSIONLESS_ENDPOINTS = frozenset({"static", "theme.stylesheet", "theme.file"})
SESSIONLESS_BLUEPRINTS = frozenset({"health", "metrics"})


def _sessionless(endpoint: str) -> bool:
    return endpoint in SESSIONLESS_ENDPOINTS or endpoint.split(".", 1)[0] in SESSIONLESS_BLUEPRINTS


@dataclass(frozen=True)
class SessionlessPaths:
    """Where the session-less endpoints are, read once from the app's URL map: the paths of their rules without
    variables, and the constant beginning of the others (``/static/`` of ``/static/<path:filename>``), kept only
    when no other rule begins the same way. Flask opens the session before it routes the request, so this is
    decided from the path alone: matching the URL there cost as much CPU as the read it saves."""

    exact: frozenset[str]
    prefixes: tuple[str, ...]

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and (path in self.exact or path.startswith(self.prefixes))


def sessionless_paths(app: Flask) -> SessionlessPaths:
    rules = list(app.url_map.iter_rules())
    others = [r.rule for r in rules if not _sessionless(str(r.endpoint))]
    mine = [r.rule for r in rules if _sessionless(str(r.endpoint))]
    prefixes = {rule.split("<", 1)[0] for rule in mine if "<" in rule}
    return SessionlessPaths(
        frozenset(rule for rule in mine if "<" not in rule and rule not in others),
        tuple(sorted(p for p in prefixes if p.endswith("/") and not any(o.startswith(p) for o in others))))


class _HashedIds:
    """Mixed in before a Flask-Session interface: its store keys are ``key_prefix`` + ``stored_id``; requests
    to the session-less endpoints do not open the stored one (``SessionlessPaths``)."""

    key_prefix: str
    _id_key: bytes
    _no_session: SessionlessPaths | None = None  # read from the URL map at the first request

    def __init__(self, *args: Any, id_key: bytes, **kwargs: Any) -> None:
        self._id_key = id_key
        super().__init__(*args, **kwargs)

    def _get_store_id(self, sid: str) -> str:
        return self.key_prefix + stored_id(self._id_key, sid)

    def open_session(self, app: Flask, request: Request) -> Any:
        if self._no_session is None:
            self._no_session = sessionless_paths(app)
        if request.path in self._no_session and request.cookies.get(app.config["SESSION_COOKIE_NAME"]):
            detached = self.session_class(sid="", permanent=False)  # type: ignore[attr-defined]
            detached.detached = True
            return detached
        return super().open_session(app, request)  # type: ignore[misc]

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        if getattr(session, "detached", False):  # never stored: the browser's own session is left as it is
            if session.modified:
                app.logger.warning("a session-less endpoint changed the session; the change is dropped")
            return
        super().save_session(app, session, response)  # type: ignore[misc]


class HashedRedisSessions(_HashedIds, RedisSessionInterface):  # type: ignore[misc]  # flask_session is untyped
    """Browser sessions in Redis, keyed by the hash of their id."""


class HashedSqlSessions(_HashedIds, SqlAlchemySessionInterface):  # type: ignore[misc]  # flask_session is untyped
    """Browser sessions in the ``browser_sessions`` table, keyed by the hash of their id."""
