"""Who calls the admin API, and whether they may make this call (issue 19).

Two ways in, never both in one request (an ``Authorization`` header decides for the bearer token, and the cookie
is then not read):

- ``Authorization: Bearer <access token>`` (RFC 6750 §2.1), a JWT the token endpoint issued to an automation
  client by the client credentials grant and checked as RFC 9068 §4 says (``broker.oidc.admin_tokens.verify``);
  the client must still be registered for the admin API, and its permissions are the token's admin scopes that
  it is still registered for (a scope the operator removed stops working at once). A refusal is RFC 6750 §3.1:
  401 ``invalid_token`` or 403 ``insufficient_scope`` with the ``WWW-Authenticate`` challenge naming the scope
  needed. A ``people_only`` call (granting roles) is refused to every client, whatever its scopes.
- the console session's cookie (``broker.web.console.COOKIE``; ``journeys.console.current`` checks the session,
  its SSO session and the roles, and audits a refusal). A cookie is sent by the browser on its own, so a call that
  changes something (``operation.STATE_CHANGING``) must come from the broker's origin (``http.same_origin``:
  ``Origin``, else a same-origin ``Referer``) and carry the session's CSRF token in ``X-CSRFToken`` (Flask-WTF;
  ``whoami`` hands it out). The blueprint is exempt from the form CSRF check, which would look for the token in
  a form field: these two checks take its place here, before the session is even looked at. A ``fresh`` call
  needs a sign-in at most ``[console] reauth_minutes`` old.

Every refusal for want of a permission is an audit record (``OPERATOR_REFUSED``); a refused token or request, which
anyone can cause, is recorded at most once per window (``REQUEST_REFUSED``, ``http.audit.record_throttled``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import request
from flask_wtf.csrf import ValidationError, validate_csrf  # wtforms' ValidationError, as flask_wtf raises it

from broker.core import errors
from broker.core.admin_scopes import admin_scope, client_permissions
from broker.core.audit import AuditKind
from broker.core.operators import Permission, permissions_of
from broker.journeys import console
from broker.oidc import admin_tokens
from broker.web.admin_api.operation import ApiError, Operation
from broker.web.console import COOKIE
from broker.web.http import audit
from broker.web.http.same_origin import origin_of, problem
from broker.web.ops import limits
from broker.web.renderer import browser, journeys
from broker.web.services import services

log = logging.getLogger("broker.security")
CSRF_HEADER = "X-CSRFToken"
REALM = 'Bearer realm="broker"'


@dataclass(frozen=True)
class Caller:
    """Who makes this call: an operator at the console, an automation client, or nobody (the public document)."""

    kind: str  # "operator" | "client" | "anonymous"
    id: str
    permissions: frozenset[Permission]
    operator: console.Operator | None = None

    @property
    def by(self) -> str:
        """As audit records name who did something: ``operator <account id> (<roles>)`` or ``client <client id>``."""
        return self.operator.by if self.operator is not None else f"{self.kind} {self.id}"


ANONYMOUS = Caller("anonymous", "", frozenset())


def _challenge(error: str, description: str, scope: str | None = None) -> str:
    """RFC 6750 §3: the ``WWW-Authenticate`` value of a refused bearer token."""
    scoped = f', scope="{scope}"' if scope else ""
    return f'{REALM}, error="{error}", error_description="{description}"{scoped}'


def authenticate(operation: Operation) -> Caller:
    """The caller of this request, allowed ``operation``; ``ApiError`` otherwise (module docstring)."""
    if operation.public:
        return ANONYMOUS
    header = request.headers.get("Authorization")
    if header is not None:
        return _client(operation, header)
    return _operator(operation)


# -- automation clients: bearer tokens ---------------------------------------------------------------------------
def _invalid_token(detail: str) -> ApiError:
    """RFC 6750 §3.1 ``invalid_token``: the same words whatever was wrong (the log has the reason)."""
    audit.record_throttled(AuditKind.REQUEST_REFUSED, "admin API: access token refused")
    description = "the access token is invalid, expired or not for this API"
    return ApiError(401, "invalid_token", description, detail=detail,
                    www_authenticate=_challenge("invalid_token", description))


def _client(operation: Operation, header: str) -> Caller:
    scheme, _, value = header.partition(" ")
    token = value.strip()
    if scheme.lower() != "bearer" or not token:
        description = "send the access token as Authorization: Bearer (RFC 6750 §2.1)"
        raise ApiError(401, "invalid_request", description,
                       www_authenticate=_challenge("invalid_request", description))
    svc = services()
    try:
        verified = admin_tokens.verify(token, svc.keys.jwt_keys, svc.oidc.settings.issuer, svc.clock.now())
    except admin_tokens.InvalidAccessToken as exc:
        raise _invalid_token(f"admin API token: {exc}") from exc
    registered = admin_tokens.registered_scopes(svc.registry.oidc_client(verified.client_id))
    if not registered:
        raise _invalid_token(f"admin API token of {verified.client_id!r}: the client is gone or no longer an "
                             "automation client")
    limits.check_client(verified.client_id)
    limits.client_succeeded(verified.client_id)
    held = client_permissions(set(verified.scopes) & set(registered))
    caller = Caller("client", verified.client_id, held)
    needed = operation.permission
    if operation.people_only or (needed is not None and needed not in held):
        scope = None if operation.people_only or needed is None else admin_scope(needed)
        description = (f"this call needs the scope {scope}" if scope
                       else "only a person signed in to the console may make this call")
        audit.record(AuditKind.OPERATOR_REFUSED, downstream=verified.client_id,
                     reason=f"admin API {operation.operation_id} refused to client {verified.client_id}: "
                            + (f"{scope} not in the token's scope" if scope else "people only"))
        raise ApiError(403, "insufficient_scope", description,
                       www_authenticate=_challenge("insufficient_scope", description, scope))
    return caller


# -- people: the console session's cookie ------------------------------------------------------------------------
def _same_origin_and_token() -> None:
    """A cookie-authenticated call that changes something: from the broker's origin, with the CSRF token."""
    expected = origin_of(services().settings.base_url)
    kind = problem(request.headers.get("Origin"), request.headers.get("Referer"), expected) if expected else "no-origin"
    if kind is not None:
        audit.record_throttled(AuditKind.REQUEST_REFUSED, f"cross-origin ({kind}): {request.endpoint}")
        raise ApiError(403, "cross_origin", "this call must come from a page of this service")
    try:
        validate_csrf(request.headers.get(CSRF_HEADER, ""))
    except ValidationError as exc:
        audit.record_throttled(AuditKind.REQUEST_REFUSED, f"csrf: {request.endpoint}")
        raise ApiError(403, "csrf_token_invalid",
                       f"send the console session's CSRF token (GET /whoami) in the {CSRF_HEADER} header",
                       detail=f"csrf: {exc}") from exc


def _operator(operation: Operation) -> Caller:
    handle = request.cookies.get(COOKIE, "")
    if not 0 < len(handle) <= 128:
        raise ApiError(401, "unauthenticated", "send a bearer token, or sign in to the console",
                       www_authenticate=REALM)
    if operation.changes_state:
        _same_origin_and_token()
    j = journeys()
    try:
        operator = console.current(j, browser(), handle, operation.permission)
    except console.SignInNeeded as exc:
        raise ApiError(401, "unauthenticated", "the console session has ended: sign in to the console again",
                       www_authenticate=REALM) from exc
    except errors.NotAnOperator as exc:  # audited by ``console.current``
        raise ApiError(403, "forbidden", "your roles do not allow this call", detail=exc.detail) from exc
    if operation.fresh and not console.fresh(j, operator):
        minutes = int(j.settings.console.reauth.total_seconds() // 60)
        raise ApiError(403, "fresh_sign_in_required",
                       f"this call needs a console sign-in at most {minutes} minutes old: sign in again")
    return Caller("operator", operator.account_id, permissions_of(operator.roles), operator)
