"""Roles for apps through the admin API (``broker.journeys.app_roles``), as ``broker roles`` and the console's
"Roles for apps" page: list an app's roles, assignments and group mappings (``view-parties``), and change them
(``manage-parties``; a person within ``[console] reauth_minutes``). Entity ids are URLs, so the app is named in
the body or the query, never in the path. Every change is audited with the caller (``operator <id>`` or
``client <client_id>``) and the state before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from broker.core.operators import Permission
from broker.journeys import app_roles
from broker.journeys.context import Journeys
from broker.web.admin_api.operation import ApiError, Call, Operation, Param
from broker.web.renderer import journeys

MAX_PARTY = 1024
_FIELDS = {"define": ("role",), "remove": ("role",), "assign": ("role", "account_id"),
           "unassign": ("role", "account_id"), "map": ("role", "upstream", "group"),
           "unmap": ("role", "upstream", "group")}


def listing(call: Call) -> dict[str, Any]:
    party_id = call.query.get("party_id", "")
    if not party_id:
        raise ApiError(400, "invalid_request", 'give the app as "party_id" (its entity id or client_id)')
    return app_roles.listing(journeys(), party_id).as_json()


def _text(call: Call, name: str, limit: int) -> str:
    value = call.body.get(name, "")
    if not isinstance(value, str) or len(value) > limit:
        raise ApiError(400, "invalid_request", f'"{name}" must be text of at most {limit} characters')
    return value


def _change(action: str) -> Callable[[Call], dict[str, Any]]:
    def handler(call: Call) -> dict[str, Any]:
        party_id = _text(call, "party_id", MAX_PARTY)
        given = {name: _text(call, name, 256) for name in ("role", "account_id", "upstream", "group")}
        if not party_id or any(not given[name] for name in _FIELDS[action]):
            raise ApiError(400, "invalid_request", f'{action} needs "party_id" and '
                                                   + ", ".join(f'"{n}"' for n in _FIELDS[action]))
        j, by, role = journeys(), call.caller.by, given["role"]
        acts: dict[str, Callable[[Journeys], app_roles.RolesChange]] = {
            "define": lambda j: app_roles.define(j, by, party_id, role, _text(call, "description", 200)),
            "remove": lambda j: app_roles.remove(j, by, party_id, role),
            "assign": lambda j: app_roles.assign(j, by, party_id, role, given["account_id"]),
            "unassign": lambda j: app_roles.unassign(j, by, party_id, role, given["account_id"]),
            "map": lambda j: app_roles.map_group(j, by, party_id, role, given["upstream"], given["group"]),
            "unmap": lambda j: app_roles.unmap_group(j, by, party_id, role, given["upstream"], given["group"]),
        }
        try:
            done = acts[action](j)
        except (app_roles.UnknownApp, app_roles.UnknownRole, app_roles.UnknownAccount) as exc:
            raise ApiError(404, "not_found", f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        except app_roles.InvalidRole as exc:
            raise ApiError(400, "invalid_request", str(exc)) from exc
        return {"party_id": done.party_id, "action": done.action, "changed": done.changed,
                "before": list(done.before), "after": list(done.after)}
    return handler


_MANAGE = Permission.MANAGE_PARTIES
_SUMMARIES = {
    "define": "Define a role of an app, or change its description",
    "remove": "Remove a role of an app with its assignments and group mappings",
    "assign": "Give an account a role in an app",
    "unassign": "Take an app's role from an account",
    "map": "Give a role to whoever signs in through an upstream with a group",
    "unmap": "Stop giving a role to an upstream group",
}
OPERATIONS = (
    Operation("GET", "/app-roles", "list-app-roles", "An app's roles, who holds them and which groups give them",
              listing, "AppRoles", Permission.VIEW_PARTIES,
              query=(Param("party_id", "the app's entity id or client_id", max_length=MAX_PARTY),)),
    *(Operation("POST", f"/app-roles/{action}", f"{action}-app-role", summary, _change(action), "AppRolesChange",
                _MANAGE, fresh=True, body="AppRolesRequest", errors=(404,),
                description="Audited with who did it and the state before and after; nothing changed, nothing "
                            "written (changed: false).")
      for action, summary in _SUMMARIES.items()),
)
