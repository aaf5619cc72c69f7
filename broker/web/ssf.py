"""The Shared Signals transmitter's HTTP endpoints (SSF 1.0; issue 18), as Flask views; what each call does is
``broker.downstream.ssf.api`` (reached through the wiring, ``services().ssf``).

    GET                  /.well-known/ssf-configuration   transmitter configuration metadata (§7.1)
    GET POST PATCH PUT DELETE  /ssf/streams               stream configuration (§8.1.1)
    GET POST             /ssf/status                      stream status (§8.1.2)
    POST                 /ssf/verify                      verification (§8.1.4)

Every call but the metadata authenticates the calling client with HTTP Basic on each request and reads no cookie:
CSRF-exempt like the OpenID provider's back channel, and limited like it (``limits.API_VIEWS`` per address; the
per-client counters of ``limits.check_client``, spent before the secret is checked; a failed authentication is
audited at most once per window and client, as at the token endpoint).
"""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response

from broker.core.audit import AuditKind
from broker.web.http import audit
from broker.web.ops import limits
from broker.web.services import services

log = logging.getLogger("broker.errors")
bp = Blueprint("ssf", __name__)
#: the most of a body read; the API refuses more than 16 KiB itself, this only stops reading
MAX_READ = 16 * 1024 + 1


def _no_transmitter() -> Response:
    response = jsonify({"error": "not_found", "error_description": "this broker has no Shared Signals transmitter"})
    response.status_code = 404
    return response


@bp.get("/.well-known/ssf-configuration")
def configuration() -> Response:
    ssf = services().ssf
    if ssf is None:
        return _no_transmitter()
    response = jsonify(ssf.metadata())
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def _call(endpoint: str) -> Response:
    svc = services()
    ssf = svc.ssf
    if ssf is None:
        return _no_transmitter()
    authorization = request.headers.get("Authorization")
    known = ssf.claimed_client(authorization)
    limits.check_client(known)
    body = request.stream.read(MAX_READ) if request.method in ("POST", "PATCH", "PUT") else b""
    answer = ssf.api(endpoint, request.method, authorization, request.args.to_dict(), request.mimetype, body,
                     svc.clock.now())
    if answer.error == "invalid_client":
        limits.client_auth_failed(known)
        audit.record_throttled(AuditKind.CLIENT_AUTH_FAILED, f"{request.endpoint}: "
                               + ("client authentication failed" if known else "unknown client"), downstream=known)
    elif answer.client_id is not None:
        limits.client_succeeded(answer.client_id)
    if answer.error is not None:
        log.info("ssf error=%s endpoint=%s detail=%s", answer.error, request.endpoint, answer.detail)
    if answer.changed is not None:
        audit.record(AuditKind.REGISTRATION_CHANGED, downstream=answer.client_id, reason=answer.changed)
    response = jsonify(answer.body) if answer.body is not None else Response(status=answer.status)
    response.status_code = answer.status
    response.headers.update(answer.headers)
    return response


@bp.route("/ssf/streams", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
def streams() -> Response:
    return _call("streams")


@bp.route("/ssf/status", methods=["GET", "POST"])
def status() -> Response:
    return _call("status")


@bp.post("/ssf/verify")
def verify() -> Response:
    return _call("verify")
