"""Stream management over HTTP, without the framework (SSF 1.0 §8.1; issue 18): a call's method, query,
``Authorization`` header and body in, an ``ApiAnswer`` (status, JSON body, headers) out. ``broker.web.ssf`` turns
Flask's request into the call and the answer into a response, and applies the rate limits.

    POST   streams                create (§8.1.1.1): 201 and the configuration
    GET    streams[?stream_id=]   read one stream (§8.1.1.2), or without ``stream_id`` the list of the caller's
    PATCH  streams                update (§8.1.1.3)  } ``stream_id`` in the body
    PUT    streams                replace (§8.1.1.4) }
    DELETE streams?stream_id=     delete (§8.1.1.5): 204
    GET    status?stream_id=      the status (§8.1.2.1)
    POST   status                 set it (§8.1.2.2)
    POST   verify                 queue a verification event (§8.1.4.2): 204

Untrusted: everything in the call. The caller is authenticated first (``receiver_auth``); a stream of another
client is answered 404 like a stream that does not exist. Errors are JSON ``{"error", "error_description"}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from broker.downstream.oidc.errors import OAuthError
from broker.downstream.ssf.config import (
    invalid,
    reason_of,
    state_of,
    status_document,
    status_of,
    stream_document,
    stream_id_of,
)
from broker.downstream.ssf.receiver_auth import authenticate_receiver
from broker.oidc.client import OidcClient

if TYPE_CHECKING:
    from broker.downstream.ssf.transmitter import SsfTransmitter

JSON = "application/json"
MAX_BODY = 16 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass(frozen=True)
class ApiAnswer:
    """What to answer: ``body`` is JSON-ready (None: no body). ``client_id``: the authenticated caller (None when
    authentication failed or was not reached); ``error``: the error code sent, if any; ``changed``: what the call
    changed, for the audit log."""

    status: int
    body: dict[str, Any] | list[dict[str, Any]] | None
    headers: Mapping[str, str] = field(default_factory=lambda: dict(NO_STORE))
    client_id: str | None = None
    error: str | None = None
    changed: str | None = None
    #: for the operator's log only
    detail: str | None = None


def handle(ssf: SsfTransmitter, endpoint: str, method: str, authorization: str | None,
           query: Mapping[str, str], mimetype: str, body: bytes, now: datetime) -> ApiAnswer:
    """One call to ``endpoint`` ("streams", "status" or "verify")."""
    client: OidcClient | None = None
    try:
        client = authenticate_receiver(authorization, ssf.clients)
        return _answer(ssf, client, endpoint, method, query, mimetype, body, now)
    except OAuthError as exc:
        headers = dict(NO_STORE)
        if exc.www_authenticate:
            headers["WWW-Authenticate"] = exc.www_authenticate
        return ApiAnswer(exc.status, exc.body(), headers, client.client_id if client is not None else None,
                         exc.error, detail=exc.detail)


def _answer(ssf: SsfTransmitter, client: OidcClient, endpoint: str, method: str, query: Mapping[str, str],
            mimetype: str, body: bytes, now: datetime) -> ApiAnswer:
    issuer, who = ssf.settings.issuer, client.client_id
    if endpoint == "streams" and method == "GET":
        if "stream_id" not in query:
            return ApiAnswer(200, [stream_document(s, issuer) for s in ssf.list_of(client)], client_id=who)
        return ApiAnswer(200, stream_document(ssf.own(client, stream_id_of(query["stream_id"])), issuer),
                         client_id=who)
    if endpoint == "streams" and method == "DELETE":
        stream_id = stream_id_of(query.get("stream_id"))
        ssf.delete(client, stream_id)
        return ApiAnswer(204, None, client_id=who, changed=f"ssf stream {stream_id} deleted")
    if endpoint == "status" and method == "GET":
        return ApiAnswer(200, status_document(ssf.own(client, stream_id_of(query.get("stream_id")))), client_id=who)
    data = _body(mimetype, body)
    if endpoint == "streams" and method == "POST":
        stream = ssf.create(client, data, now)
        return ApiAnswer(201, stream_document(stream, issuer), client_id=who,
                         changed=f"ssf stream {stream.stream_id} created")
    if endpoint == "streams" and method in ("PATCH", "PUT"):
        stream = ssf.update(client, data, now, partial=method == "PATCH")
        return ApiAnswer(200, stream_document(stream, issuer), client_id=who,
                         changed=f"ssf stream {stream.stream_id} {'updated' if method == 'PATCH' else 'replaced'}")
    if endpoint == "status" and method == "POST":
        stream = ssf.set_status(client, stream_id_of(data.get("stream_id")), status_of(data.get("status")),
                                reason_of(data.get("reason")), now)
        return ApiAnswer(200, status_document(stream), client_id=who,
                         changed=f"ssf stream {stream.stream_id} {stream.status.value}")
    if endpoint == "verify" and method == "POST":
        ssf.verify(client, stream_id_of(data.get("stream_id")), state_of(data.get("state")), now)
        return ApiAnswer(204, None, client_id=who)
    raise OAuthError("invalid_request", f"{method} is not supported here", 405)


def _body(mimetype: str, data: bytes) -> dict[str, Any]:
    """The call's JSON object, at most ``MAX_BODY`` bytes, each member name once (RFC 8259 §4)."""
    if mimetype != JSON:
        raise invalid(f"the request body must be {JSON}")
    if len(data) > MAX_BODY:
        raise invalid(f"the request body is larger than {MAX_BODY // 1024} KiB")
    try:
        raw = json.loads(data, parse_constant=_no_constant, object_pairs_hook=_unique_members)
    except RecursionError as exc:
        raise invalid("the request body is nested too deeply") from exc
    except ValueError as exc:  # also UnicodeDecodeError
        raise invalid("the request body is not valid JSON, or repeats a member") from exc
    if not isinstance(raw, dict):
        raise invalid("the request body must be a JSON object")
    return raw


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON (RFC 8259 §6)")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ValueError("a member name is repeated")
    return found
