"""The admin API (issue 19): what the operator console does, as JSON for programs, under ``/api/admin/v1``.

    GET    /whoami                                   any caller       who is calling, and with which permissions
    GET    /citizens?email=|upstream=&subject=|reference=|account=    look-up-citizens   find one citizen
    GET    /citizens/{account_id}                    look-up-citizens   a citizen's summary (no claim values)
    POST   /citizens/{account_id}/disable            manage-citizens    {"reason": ...}; people: a fresh sign-in
    POST   /citizens/{account_id}/enable             manage-citizens    people: a fresh sign-in
    GET    /audit?account=&reference=&limit=         view-audit         the newest audit records
    POST   /audit/verify                             view-audit         check the hash chain
    GET    /operators                                manage-operators   people only
    PUT    /operators/{account_id}/roles/{role}      manage-operators   people only, a fresh sign-in
    DELETE /operators/{account_id}/roles/{role}      manage-operators   people only, a fresh sign-in
    GET    /apps                                     view-parties       every registered app and upstream
    POST   /apps/preview                             manage-parties     {"kind", "document", "settings"}: checked, diff
    POST   /apps                                     manage-parties     the same body: registered; people: fresh
    POST   /apps/disable|enable|remove               manage-parties     {"kind", "party_id"}; people: fresh
    POST   /apps/settings/preview                    manage-parties     {"kind", "party_id", "settings", "clear"}: diff
    POST   /apps/settings                            manage-parties     the same body: a SAML app's settings; fresh
    GET    /federations                              view-parties       every IdP metadata source and its state
    GET    /federations/{folder}/{name}/entities?q=  view-parties       a source's identity providers, 50 a page
    POST   /federations/refresh                      manage-parties     {"name"}: refresh that source now
    GET    /keys                                     view-parties       the signing keys and the next rotation step
    POST   /keys/rotate                              manage-keys        {"step", "force"}; people: a fresh sign-in
    GET    /policy                                   view-parties       the release policy and consents per version
    POST   /policy/preview                           manage-parties     {"document"}: checked, diff, what it means
    PUT    /policy                                   manage-parties     the same body: written; people: a fresh sign-in
    GET    /policy/versions                          view-parties       the past versions, who replaced them
    GET    /openapi.json                             nobody needed      the OpenAPI 3.1 document of all this

The table is ``table.OPERATIONS``; the routes below are registered from it and ``openapi`` describes it. Who may
call is ``auth``'s: an automation client's bearer token (client credentials, RFC 6749 §4.4; RFC 9068) or an
operator's console session. The console's pages and these calls use the same journeys (``citizen_lookup``,
``account_status``, ``operator_roles``), which audit every change with who made it. Answers are JSON and never
cached; errors are JSON too (``operation.ApiError``; 404, 405, 429 and 500 through ``broker.web.pages``); the
per-address limit of the back channel applies (``broker.web.ops.limits``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response

from broker.core import errors
from broker.web.admin_api import auth
from broker.web.admin_api.operation import ApiError, Call, Operation
from broker.web.admin_api.table import OPERATIONS

log = logging.getLogger("broker.admin_api")
PREFIX = "/api/admin/v1"
bp = Blueprint("admin_api", __name__, url_prefix=PREFIX)
JSON = "application/json"


def _json(body: dict[str, Any], status: int) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(ApiError)
def _refused(exc: ApiError) -> Response:
    log.info("admin API refused: endpoint=%s error=%s detail=%s", request.endpoint, exc.error, exc.detail)
    response = _json(exc.body(), exc.status)
    if exc.www_authenticate:
        response.headers["WWW-Authenticate"] = exc.www_authenticate
    return response


@bp.errorhandler(errors.BrokerError)
def _broker_error(exc: errors.BrokerError) -> Response:
    """A journey's refusal inside a call (the console switched off meanwhile, ...): JSON, never the error page."""
    log.info("admin API: endpoint=%s %s detail=%s", request.endpoint, type(exc).__name__, exc.detail)
    return _json({"error": exc.oidc_error, "error_description": exc.message}, exc.http_status)


def _query(op: Operation) -> dict[str, str]:
    """The declared query parameters, each once and within its length."""
    found: dict[str, str] = {}
    for param in op.query:
        values = request.args.getlist(param.name)
        if len(values) > 1 or any(len(v) > param.max_length for v in values):
            raise ApiError(400, "invalid_request", f"{param.name} must be given once, at most "
                                                   f"{param.max_length} characters")
        if values:
            found[param.name] = values[0].strip()
    return found


def _body(op: Operation) -> dict[str, Any]:
    """The JSON object of a call that takes one (an empty body is ``{}``)."""
    if op.body is None or not request.get_data(cache=True):
        return {}
    raw = request.get_json(silent=True) if request.mimetype == JSON else None
    if not isinstance(raw, dict):
        raise ApiError(400, "invalid_request", f"the body must be a JSON object ({JSON})")
    return raw


def _view(op: Operation) -> Callable[..., Response]:
    def view(**path: str) -> Response:
        caller = auth.authenticate(op)
        answer = op.handler(Call(caller, path, _query(op), _body(op)))
        return _json(answer, op.status)

    view.__name__ = op.endpoint
    return view


for _op in OPERATIONS:
    bp.add_url_rule(_op.flask_rule, _op.endpoint, _view(_op), methods=[_op.method])
