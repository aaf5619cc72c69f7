"""When PostgreSQL or Redis is unreachable: HTTP 503, not a stack trace (DESIGN: operator contract).

A lost database or Redis connection becomes ``errors.ServiceUnavailable`` in the form the caller reads:

- a program calling the OpenID provider's back channel (token, userinfo, ...): JSON
  ``{"error": "temporarily_unavailable"}`` with status 503 (RFC 6749 §5.2 form);
- an authorization or SAML AuthnRequest that can be answered in its protocol (a registered client and
  redirect URI, a known SP; both are read from the in-memory registry): the error goes back to the app,
  OIDC ``error=temporarily_unavailable`` (RFC 6749 §4.1.2.1), SAML status ``Responder``;
- anything else: the error page (status 503) with a support reference.

Each outage is one warning line with the reference and the cause, no traceback (an outage is expected to
hit every request until the service returns). Nothing is written to the audit log: it lives in the database.
Recovery needs nothing: a disconnect met on a connection makes SQLAlchemy retire the whole pool and open new
connections, and a connection that rested in the pool over ``broker.storage.db.IDLE_PING_AFTER`` seconds is pinged
before use (``ping_when_idle``; no ping per checkout under load, issue 21), so after a restart only the requests in
flight meet it; redis-py reconnects on the next command.

Browser sessions in Redis (or in the database) are read before any view runs and written after it: a failure
there is caught by ``GuardedSessions`` and answered like the others; a request whose answer is an outage does
not try to write its session to the unreachable store again.
"""

from __future__ import annotations

import logging
from typing import Any

import redis.exceptions
from flask import Flask, request
from flask.sessions import SessionInterface, SessionMixin
from flask.wrappers import Request
from flask.wrappers import Response as FlaskResponse
from flask_babel import gettext as _
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from broker.core import errors
from broker.core.model import LoginRequest, Protocol
from broker.core.protocol_ports import POST, REDIRECT, DownstreamMessage, RequestRefused
from broker.journeys.login import failure_answer
from broker.web import oidc_api
from broker.web.http.journey_context import support_reference
from broker.web.pages import _wants_json
from broker.web.renderer import error_html, render
from broker.web.services import services

log = logging.getLogger("broker.errors")

#: a lost or refused connection, a pool that gave none in time; an IntegrityError (a DBAPIError too) is no outage
OUTAGES: tuple[type[Exception], ...] = (
    sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError,
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
)
#: redis-py client options: a Redis that is down or does not answer fails the request within seconds
REDIS_TIMEOUTS: dict[str, float] = {"socket_connect_timeout": 2.0, "socket_timeout": 3.0}
#: seconds a client is told to wait (Retry-After) before trying again
RETRY_AFTER = 30
#: set in the WSGI environ when this request met an outage: its session is not written back
_ENVIRON_KEY = "broker.outage"


_NOT_ANSWERABLE: tuple[type[Exception], ...] = (RequestRefused, errors.BrokerError, *OUTAGES)


def is_outage(exc: BaseException) -> bool:
    return isinstance(exc, OUTAGES)


def _service(exc: BaseException) -> str:
    return "redis" if isinstance(exc, redis.exceptions.RedisError) else "database"


def _cause(exc: BaseException) -> str:
    if isinstance(exc, sa_exc.DBAPIError):
        return " ".join(str(exc.orig).split())[:300]
    return " ".join(str(exc).split())[:300]


def _login_request() -> LoginRequest | None:
    """The login this request asks for, when it can be answered in its protocol without the database."""
    j = services().journeys
    try:
        if request.endpoint == "oidc_provider.authorize":
            pairs = request.args.items(multi=True) if request.method == "GET" else request.form.items(multi=True)
            return j.downstreams[Protocol.OIDC].read(DownstreamMessage(REDIRECT, tuple(pairs)), j.now())
        if request.endpoint == "saml_idp.sso_redirect":
            return j.downstreams[Protocol.SAML].read(DownstreamMessage(REDIRECT, (), request.query_string), j.now())
        if request.endpoint == "saml_idp.sso_post":
            fields = tuple(request.form.items(multi=True))
            return j.downstreams[Protocol.SAML].read(DownstreamMessage(POST, fields), j.now())
    except _NOT_ANSWERABLE:
        return None
    return None


def _protocol_reply(error: errors.ServiceUnavailable) -> Response | None:
    login = _login_request()
    if login is None:
        return None
    try:
        reply = failure_answer(services().journeys, login, error)
    except OUTAGES:  # a dynamically registered client cannot be looked up either
        return None
    return render(reply) if reply is not None else None


def outage_response(exc: BaseException) -> Response:
    """The 503 answer to ``exc`` (an outage), in the form the caller reads."""
    request.environ[_ENVIRON_KEY] = True
    reference = support_reference()
    log.warning("ref=%s outage: %s unreachable (%s) endpoint=%s: %s", reference, _service(exc),
                type(exc).__name__, request.endpoint or request.path, _cause(exc))
    error = errors.ServiceUnavailable(detail=_cause(exc))
    reply: Response | None
    if _wants_json():
        reply = oidc_api.json_response({"error": error.oidc_error,
                                        "error_description": f"{error.message} (reference {reference})"},
                                       error.http_status)
    else:
        reply = _protocol_reply(error)
        if reply is None:
            page = error_html(error.http_status, str(_(error.message)), reference, look_up=False)
            reply = Response(page, status=error.http_status, mimetype="text/html")
    reply.headers.setdefault("Retry-After", str(RETRY_AFTER))
    return reply


class GuardedSessions(SessionInterface):
    """Mixed into the app's session interface (Flask-Session, Redis or SQL): a store that cannot be reached while
    the session is opened or saved makes the request an outage (503) instead of a 500."""

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        try:
            return super().open_session(app, request)
        except OUTAGES as exc:
            request.environ[_ENVIRON_KEY] = exc
            return self.make_null_session(app)

    def save_session(self, app: Flask, session: SessionMixin, response: FlaskResponse) -> None:
        if request.environ.get(_ENVIRON_KEY):
            return  # this request already answered an outage; the store is not tried again
        try:
            super().save_session(app, session, response)
        except OUTAGES:
            request.environ[_ENVIRON_KEY] = True
            raise


#: the Flask-Session store methods wrapped in ``retry_query``
_RETRIED = ("_retrieve_session_data", "_upsert_session", "_delete_session", "_delete_expired_sessions")


def _reraise_session_outage() -> None:
    exc = request.environ.get(_ENVIRON_KEY)
    if isinstance(exc, Exception):
        raise exc


def register(app: Flask) -> None:
    """Error handlers for outages and the session guard; call after ``pages.register_error_handlers``."""
    for kind in OUTAGES:
        app.register_error_handler(kind, outage_response)
    inner = app.session_interface
    # Flask-Session's SQL store retries each query three times, sleeping and logging a traceback each time
    # (``retry_query``): the pool already replaces broken connections (``broker.storage.db.ping_when_idle``, and
    # the pool's invalidation on a disconnect), so an outage is answered at once.
    unwrapped = {name: getattr(type(inner), name).__wrapped__ for name in _RETRIED
                 if hasattr(getattr(type(inner), name, None), "__wrapped__")}
    inner.__class__ = type(f"Guarded{type(inner).__name__}", (GuardedSessions, type(inner)), unwrapped)
    # first of all before_request functions: CSRF and rate limits must not judge a request without its session
    app.before_request_funcs.setdefault(None, []).insert(0, _reraise_session_outage)
    http_handler = app.error_handler_spec[None][None].get(HTTPException)

    def server_error(exc: InternalServerError) -> Any:
        """Unhandled errors outside the views (a session that could not be saved) arrive here as a 500."""
        original = exc.original_exception
        if original is not None and is_outage(original):
            return outage_response(original)
        return http_handler(exc) if http_handler is not None else exc

    app.register_error_handler(InternalServerError, server_error)
