"""The admin API's OpenAPI 3.1 document, written from the same table the routes are registered from
(``table.OPERATIONS``): every path and method, the permission each needs (``x-permission``, and in words in its
description), what it reads and answers, and the two ways in (``auth``): an OAuth 2.0 client credentials token
(RFC 6749 §4.4) whose scopes are ``admin:<permission>``, or the console session's cookie."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from broker.core.admin_scopes import CLIENT_SCOPES, PEOPLE_ONLY, admin_scope
from broker.core.operators import Permission
from broker.web.admin_api.operation import Operation
from broker.web.admin_api.schemas import COMPONENTS
from broker.web.console import COOKIE

VERSION = "1"
ERRORS = {400: "The request is malformed (invalid_request).",
          401: "No valid credentials: RFC 6750 §3.1 invalid_token for a bearer token; no console session.",
          403: "Not allowed: insufficient_scope (bearer), forbidden (roles), fresh_sign_in_required, "
               "csrf_token_invalid or cross_origin (console session).",
          404: "No such account, role or metadata source.",
          409: "The change would leave no admin (last_admin), or cannot be made now (refused).",
          429: "Too many requests (Retry-After)."}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _needs(op: Operation) -> str:
    if op.public:
        return "No authentication."
    who = "A person at the console only (never a client)" if op.people_only else "An operator or a client"
    what = f"permission {op.permission.value}" if op.permission is not None else "any permission"
    scope = "" if op.people_only or op.permission is None else f" (scope {admin_scope(op.permission)})"
    fresh = "; a person must have signed in within [console] reauth_minutes" if op.fresh else ""
    return f"{who} with {what}{scope}{fresh}."


def _security(op: Operation) -> list[dict[str, list[str]]]:
    if op.public:
        return []
    session: dict[str, list[str]] = {"consoleSession": []}
    if op.people_only:
        return [session]
    scopes = [admin_scope(op.permission)] if op.permission is not None else []
    return [{"clientCredentials": scopes}, session]


def _operation(op: Operation) -> dict[str, Any]:
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in op.path_params]
    parameters += [{"name": p.name, "in": "query", "required": False, "description": p.description,
                    "schema": {"type": "integer"} if p.integer else {"type": "string", "maxLength": p.max_length}}
                   for p in op.query]
    responses: dict[str, Any] = {str(op.status): _json(op.response, op.summary)}
    statuses = () if op.public else (400, 401, 403, *op.errors, 429)
    for status in statuses:
        responses[str(status)] = _json("Error", ERRORS[status])
    answer: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "description": " ".join(part for part in (op.description, _needs(op)) if part),
        "x-permission": op.permission.value if op.permission is not None else None,
        "x-people-only": op.people_only,
        "x-fresh-sign-in": op.fresh,
        "security": _security(op),
        "responses": responses,
    }
    if parameters:
        answer["parameters"] = parameters
    if op.body is not None:
        answer["requestBody"] = {"required": False, "content": {"application/json": {"schema": _ref(op.body)}}}
    return answer


def document(operations: Sequence[Operation], base_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations`` served under ``base_url``."""
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    scope_words = {admin_scope(p): f"permission {p.value}" for p in Permission if admin_scope(p) in CLIENT_SCOPES}
    people = ", ".join(sorted(admin_scope(p) for p in PEOPLE_ONLY))
    return {
        "openapi": "3.1.0",
        "info": {"title": "Broker admin API", "version": VERSION,
                 "description": "What the operator console does, for programs. Errors are JSON "
                                '{"error", "error_description"}; a refused bearer token also gets the RFC 6750 §3 '
                                "WWW-Authenticate challenge."},
        "servers": [{"url": base_url.rstrip("/") + "/api/admin/v1"}],
        "paths": paths,
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {
                "clientCredentials": {
                    "type": "oauth2",
                    "description": "An automation client the operator registered with grant_types "
                                   '["client_credentials"] and admin scopes gets a JWT access token (RFC 9068, '
                                   "typ at+jwt, five minutes) at the token endpoint and sends it as "
                                   f"Authorization: Bearer. {people} are never a client's.",
                    "flows": {"clientCredentials": {"tokenUrl": base_url.rstrip("/") + "/oidc/token",
                                                    "scopes": scope_words}},
                },
                "consoleSession": {
                    "type": "apiKey", "in": "cookie", "name": COOKIE,
                    "description": "An operator's console session (sign in at /console/); the permissions of the "
                                   "operator's roles. A call that changes something must come from the broker's "
                                   "origin and send the session's CSRF token (GET /whoami) as X-CSRFToken.",
                },
            },
        },
    }
