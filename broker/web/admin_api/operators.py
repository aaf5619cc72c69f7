"""Who holds which operator role (``manage-operators``): people only, never an automation client, and granting or
revoking needs a recent console sign-in (``broker.journeys.operator_roles``, which audits each change)."""

from __future__ import annotations

from typing import Any

from broker.core.operators import Permission, Role, parse_role
from broker.journeys import console, operator_roles
from broker.web.admin_api.operation import ApiError, Call, Operation
from broker.web.admin_api.schemas import when
from broker.web.renderer import journeys


def listing(call: Call) -> dict[str, Any]:
    return {"grants": [{"account_id": g.account_id, "role": g.role.value, "granted_by": g.granted_by,
                        "granted_at": when(g.granted_at)} for g in console.grants(journeys()).listing()]}


def _target(call: Call) -> tuple[str, Role]:
    try:
        role = parse_role(call.path["role"][:32])
    except ValueError as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return call.path["account_id"][:36], role


def _answer(change: operator_roles.RoleChange) -> dict[str, Any]:
    return {"account_id": change.account_id, "role": change.role.value, "changed": change.changed,
            "before": sorted(r.value for r in change.before), "after": sorted(r.value for r in change.after)}


def grant(call: Call) -> dict[str, Any]:
    account_id, role = _target(call)
    try:
        return _answer(operator_roles.grant(journeys(), account_id, role, call.caller.id))
    except operator_roles.UnknownAccount as exc:
        raise ApiError(404, "not_found", "there is no such account") from exc


def revoke(call: Call) -> dict[str, Any]:
    account_id, role = _target(call)
    try:
        return _answer(operator_roles.revoke(journeys(), account_id, role, call.caller.id))
    except operator_roles.UnknownAccount as exc:
        raise ApiError(404, "not_found", "there is no such account") from exc
    except operator_roles.LastAdmin as exc:
        raise ApiError(409, "last_admin", "this is the last admin role: grant admin to someone else first") from exc


MANAGE = Permission.MANAGE_OPERATORS
OPERATIONS = (
    Operation("GET", "/operators", "list-operators", "Who holds which role", listing, "Operators", MANAGE,
              people_only=True),
    Operation("PUT", "/operators/{account_id}/roles/{role}", "grant-role", "Grant a role", grant, "RoleChange", MANAGE,
              people_only=True, fresh=True, errors=(404,),
              description="Idempotent: granting a role held already changes nothing. Audited with the granting "
                          "operator."),
    Operation("DELETE", "/operators/{account_id}/roles/{role}", "revoke-role", "Revoke a role", revoke, "RoleChange",
              MANAGE, people_only=True, fresh=True, errors=(404, 409),
              description="The last admin role cannot be revoked. Audited with the revoking operator."),
)
