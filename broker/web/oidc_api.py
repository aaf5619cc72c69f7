"""The OpenID provider's JSON endpoints: discovery, JWKS, token, UserInfo, revocation, introspection.

Errors are JSON in OAuth's form (RFC 6749 §5.2, RFC 6750 §3), never an HTML page; token responses are never
cached (RFC 6749 §5.1). Browsers may call these cross-origin (single-page apps using PKCE): they answer CORS
requests for any origin, which is safe because no cookie is read here, only credentials the caller sends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, g, jsonify, request
from werkzeug.wrappers import Response

from broker.core.audit import AuditKind
from broker.downstream.oidc.client_auth import ClientCredentials, claimed_client_id
from broker.downstream.oidc.discovery import DiscoveryInputs, discovery_document
from broker.downstream.oidc.errors import OAuthError
from broker.keys.jwt import public_jwks
from broker.web.http import audit
from broker.web.ops import limits
from broker.web.services import services

log = logging.getLogger("broker.errors")
bp = Blueprint("oidc_api", __name__)
FORM = "application/x-www-form-urlencoded"
T = TypeVar("T")


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.after_request
def _cors(response: Response) -> Response:
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    return response


def oauth_error(exc: OAuthError) -> Response:
    """The error as JSON; a revoked grant and failed client authentication are also security events."""
    log.info("oauth error=%s endpoint=%s detail=%s", exc.error, request.endpoint, exc.detail)
    if exc.revoked_grant is not None:
        audit.record(AuditKind.GRANT_REVOKED, reason=f"{request.endpoint}: {exc.detail}"[:1024])
    elif exc.error == "invalid_client":
        # anyone can fail: at most one record per window and client (the caller's text never: an id not
        # registered reads "unknown client"), with the count of the others (issue 15, point 4)
        known: str | None = g.get("claimed_client")
        audit.record_throttled(AuditKind.CLIENT_AUTH_FAILED, f"{request.endpoint}: "
                               + ("client authentication failed" if known else "unknown client"), downstream=known)
    response = json_response(exc.body(), exc.status)
    if exc.www_authenticate:
        response.headers["WWW-Authenticate"] = exc.www_authenticate
    return response


def _single_valued_form() -> dict[str, str]:
    """The form, each parameter once: RFC 6749 §3.2 "parameters MUST NOT be included more than once", and
    §5.2 names a repeated one ``invalid_request``. Taking the first copy instead would let a proxy or a
    firewall that reads the last one see another request than the broker answers."""
    repeated = sorted(name for name, values in request.form.lists() if len(values) > 1)
    if repeated:
        raise OAuthError("invalid_request", "a parameter was sent more than once",
                         detail=f"parameters repeated: {', '.join(repeated)}"[:300])
    return request.form.to_dict()


def _credentials() -> ClientCredentials:
    """The POSTed form and Authorization header; RFC 6749 §3.2 requires the form encoding."""
    if request.mimetype != FORM:
        raise OAuthError("invalid_request", f"the request body must be {FORM}")
    return ClientCredentials(form=_single_valued_form(), authorization=request.headers.get("Authorization"))


def _as_client(answer: Callable[[ClientCredentials], T]) -> T:
    """``answer`` for the client the request claims to be, inside its limits (``broker.web.ops.limits``): a
    registered id is limited by its own failures from this address and by its budget of successes; every
    id not registered shares one failure counter per address, so made-up ids create no new counters. The
    limits are checked before the client's secret is (scrypt, RFC 6749 §2.3.1), and only a success spends
    the client's budget, so nobody without its credentials can exhaust it."""
    credentials = _credentials()
    claimed = claimed_client_id(credentials)
    known = claimed if claimed and services().registry.oidc_client(claimed) is not None else None
    g.claimed_client = known
    limits.check_client(known)
    try:
        result = answer(credentials)
    except OAuthError as exc:
        if exc.error == "invalid_client":
            limits.client_auth_failed(known)
        raise
    if known is not None:
        limits.client_succeeded(known)
    return result


@bp.get("/.well-known/openid-configuration")
def configuration() -> Response:
    svc = services()
    document = discovery_document(DiscoveryInputs(svc.settings.base_url, svc.settings.oidc.registration_token
                                                  is not None))
    response = jsonify(document)
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.get("/oidc/jwks")
def jwks() -> Response:
    response = jsonify(public_jwks(services().keys.jwt_keys))
    # Short enough that a next key published for rotation reaches every client before it signs.
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.post("/oidc/token")
def token() -> Response:
    svc = services()
    answer = _as_client(lambda credentials: svc.oidc.token(credentials, svc.clock.now()))
    if request.form.get("grant_type") == "client_credentials":  # an admin API token (issue 19): audited
        audit.record(AuditKind.ADMIN_TOKEN_ISSUED, downstream=g.get("claimed_client"),
                     reason=f"scope {answer.get('scope', '')}"[:1024])
    return json_response(answer)


@bp.route("/oidc/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    """OIDC Core §5.3.1: the access token as a bearer header (RFC 6750 §2.1) or, on POST, a form field
    (§2.2); never in the query (§2.3 is refused: URLs end up in logs)."""
    svc = services()
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    access_token = value.strip() if scheme.lower() == "bearer" else None
    if request.method == "POST" and request.mimetype == FORM and "access_token" in request.form:
        if access_token is not None or len(request.form.getlist("access_token")) > 1:
            raise OAuthError("invalid_request", "the access token was sent twice")  # RFC 6750 §2
        access_token = request.form["access_token"]
    return json_response(svc.oidc.userinfo(access_token, svc.clock.now(), admit=_token_holder))


def _token_holder(client_id: str) -> None:
    """A valid access token of ``client_id`` was presented: it spends that client's budget (``per_client``),
    which only holders of the client's tokens can do."""
    limits.check_client(client_id)
    limits.client_succeeded(client_id)


@bp.post("/oidc/revoke")
def revoke() -> Response:
    svc = services()
    _as_client(lambda credentials: svc.oidc.revoke(credentials, svc.clock.now()))
    return json_response({})


@bp.post("/oidc/introspect")
def introspect() -> Response:
    svc = services()
    return json_response(_as_client(lambda credentials: svc.oidc.introspect(credentials, svc.clock.now())))
