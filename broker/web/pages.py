"""The broker's home page and the error handlers that keep stack traces from people (health: ``web.health``)."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from broker.core import errors
from broker.core.audit import AuditKind
from broker.downstream.oidc.errors import OAuthError
from broker.journeys.context import DownstreamFailure
from broker.web import admin_api, oidc_api, oidc_registration, ssf, upstream_backchannel
from broker.web.http import audit
from broker.web.http.journey_context import support_reference
from broker.web.http.same_origin import CrossOriginRequest
from broker.web.renderer import error_html, error_page, html, reply_to_downstream
from broker.web.services import services

log = logging.getLogger("broker.errors")
bp = Blueprint("pages", __name__)
#: the blueprints programs call: their errors are JSON, never a page
_JSON_BLUEPRINTS = frozenset({oidc_api.bp.name, oidc_registration.bp.name, ssf.bp.name, upstream_backchannel.bp.name,
                              admin_api.bp.name})
#: the same endpoints by path, for errors raised before routing found the blueprint (405, 404)
_JSON_PATHS = ("/oidc/token", "/oidc/userinfo", "/oidc/revoke", "/oidc/introspect", "/oidc/jwks", "/oidc/register",
               "/.well-known/", "/ssf/", admin_api.PREFIX + "/")


def _wants_json() -> bool:
    """Programs call these endpoints and read JSON errors (RFC 6749 §5.2), never an HTML page."""
    return request.blueprint in _JSON_BLUEPRINTS or request.path.startswith(_JSON_PATHS)


@bp.get("/")
def home() -> str:
    svc = services()
    return html("home.html", demo=svc.settings.demo, idp_metadata="/saml2/idp/metadata")


def _http_error(exc: HTTPException) -> Response:
    reference = support_reference()
    log.info("ref=%s http=%s description=%s", reference, exc.code, exc.description)
    # anyone can cause these: at most one record per window and endpoint, with the count (issue 15, point 4)
    if exc.code == 429:
        audit.record_throttled(AuditKind.RATE_LIMITED, str(request.endpoint), reference=reference)
    elif isinstance(exc, CrossOriginRequest):  # no header value is recorded: only which rule refused it
        audit.record_throttled(AuditKind.REQUEST_REFUSED, f"cross-origin ({exc.kind}): {request.endpoint}",
                               reference=reference)
    elif isinstance(exc, CSRFError):
        audit.record_throttled(AuditKind.REQUEST_REFUSED, f"csrf: {request.endpoint}", reference=reference)
    if _wants_json():
        code = "temporarily_unavailable" if exc.code == 429 else "invalid_request"
        response = oidc_api.json_response({"error": code, "error_description": str(exc.description)},
                                          exc.code or 500)
    else:
        page = error_html(exc.code or 500, _http_message(exc), reference)
        response = Response(page, status=exc.code or 500, mimetype="text/html")
    for name, value in exc.get_headers():  # e.g. Retry-After of a 429, Allow of a 405
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _http_message(exc: HTTPException) -> str:
    """What the person reads: a sentence the broker wrote for this refusal (a rate limit's, the origin check's),
    translated, else the broker's own for the status. Werkzeug's default descriptions and Flask-WTF's CSRF reasons
    ("The CSRF token is missing.") speak to developers, in English only, so they stay in the log."""
    written = exc.description and exc.description != type(exc).description
    if written and (isinstance(exc, CrossOriginRequest) or not isinstance(exc, CSRFError)):
        return str(_(exc.description))
    if exc.code == 429:
        return str(_("You tried too often in a short time. Wait a minute, then try again."))
    if exc.code == 404:
        return str(_("There is no page at this address. Check the address, or use one of the links below."))
    if exc.code is not None and exc.code >= 500:
        return str(_("The sign-in service could not answer this request. Please try again later."))
    return str(_("The page you came from may have expired or was sent incompletely. Go back, reload it and try again."))


def _unexpected(exc: Exception) -> Response:
    reference = support_reference()
    log.exception("ref=%s unexpected error", reference)
    status = 503 if isinstance(exc, OperationalError) else 500
    error = errors.ServiceUnavailable() if status == 503 else errors.BrokerError()
    if _wants_json():
        return oidc_api.json_response({"error": "temporarily_unavailable" if status == 503 else "server_error",
                                       "error_description": f"{error.message} (reference {reference})"}, status)
    page = error_html(status, str(_(error.message)), reference)
    return Response(page, status=status, mimetype="text/html")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(DownstreamFailure, reply_to_downstream)
    app.register_error_handler(OAuthError, oidc_api.oauth_error)
    app.register_error_handler(errors.BrokerError, error_page)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
