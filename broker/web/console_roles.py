"""The operator console's roles for apps (issue 19; README "Roles for apps", ``broker roles``): one app's roles,
who holds them and which upstream groups give them, at ``/console/roles?party=PARTY_ID``, with forms to define,
remove, assign, unassign, map and unmap (``broker.journeys.app_roles``, the CLI's and the admin API's journey).

Looking needs ``view-parties``; a change ``manage-parties``, a POST with the console's CSRF token and a sign-in at
most ``[console] reauth_minutes`` old (else the sign-in page, which comes back here); each change is audited with
the operator and the state before and after.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, request, url_for
from werkzeug.wrappers import Response

from broker.core.operators import Permission
from broker.journeys import app_roles, console
from broker.web.console import operator_page, page
from broker.web.http.journey_context import support_reference
from broker.web.renderer import journeys

bp = Blueprint("console_roles", __name__, url_prefix="/console/roles")

MAX_PARTY = 1024
ACTIONS = ("define", "remove", "assign", "unassign", "map", "unmap")
_REFUSED = (app_roles.UnknownApp, app_roles.UnknownRole, app_roles.UnknownAccount, app_roles.InvalidRole)


def _field(name: str, limit: int = 300) -> str:
    return request.form.get(name, "")[:limit]


def _page(op: console.Operator, party_id: str, status: int = 200, refused: str | None = None,
          done: app_roles.RolesChange | None = None) -> Response:
    j = journeys()
    try:
        found = app_roles.listing(j, party_id) if party_id else None
    except app_roles.NotWired:
        return page("error.html", 404, message="This broker keeps no roles for apps.", reference=support_reference())
    party = j.registry.downstream(party_id) if party_id else None
    return page("console_roles.html", status, operator=op, party_id=party_id, found=found,
                app_name=party.display_name if party is not None else None, refused=refused, done=done)


@bp.get("/")
def roles() -> Response:
    party_id = request.args.get("party", "")[:MAX_PARTY]
    return operator_page(Permission.VIEW_PARTIES, lambda op: _page(op, party_id))


@bp.post("/change")
def change() -> Response:
    """One change (``action``: define, remove, assign, unassign, map, unmap) to the app ``party_id``'s roles."""
    party_id, action, role = _field("party_id", MAX_PARTY), _field("action", 16), _field("role", 80)
    back = url_for("console_roles.roles") + "?" + urlencode({"party": party_id})

    def view(op: console.Operator) -> Response:
        j = journeys()
        if not party_id or action not in ACTIONS or not role:
            return _page(op, party_id, 400, refused="Choose an app, a role and what to do.")
        if not console.fresh(j, op):
            return page("console_sign_in.html", then=back, reauth=True)
        account, upstream, group = _field("account_id", 64).strip(), _field("upstream", 256), _field("group", 256)
        try:
            done = {
                "define": lambda: app_roles.define(j, op.by, party_id, role, _field("description", 200)),
                "remove": lambda: app_roles.remove(j, op.by, party_id, role),
                "assign": lambda: app_roles.assign(j, op.by, party_id, role, account),
                "unassign": lambda: app_roles.unassign(j, op.by, party_id, role, account),
                "map": lambda: app_roles.map_group(j, op.by, party_id, role, upstream, group),
                "unmap": lambda: app_roles.unmap_group(j, op.by, party_id, role, upstream, group),
            }[action]()
        except _REFUSED as exc:
            return _page(op, party_id, 409, refused=f"{type(exc).__name__}: {str(exc)[:300]}")
        return _page(op, party_id, done=done)
    return operator_page(Permission.MANAGE_PARTIES, view)
