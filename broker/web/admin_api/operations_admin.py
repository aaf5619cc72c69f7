"""The admin API's federations, signing keys and release policy (issue 19), as the console's pages show them
(``broker.journeys.federation_admin``, ``key_admin``, ``policy_admin``; the same journeys audit the changes with
``operator <account> (<roles>)`` or ``client <client_id>``).

A source's name holds a slash (``federation/<name>``, ``saml-idp/<name>``), so its entities are at
``/federations/{folder}/{name}/entities``; "refresh now" names it in the body.
"""

from __future__ import annotations

from typing import Any

from broker.core.operators import Permission
from broker.core.signing_keys import Step
from broker.journeys import federation_admin, key_admin, policy_admin
from broker.web.admin_api import policy_changes
from broker.web.admin_api import schemas_operations as out
from broker.web.admin_api.operation import ApiError, Call, Operation, Param
from broker.web.renderer import journeys


def _unknown(name: str) -> ApiError:
    return ApiError(404, "not_found", f"there is no metadata source {name[:200]!r}")


def federations(call: Call) -> dict[str, Any]:
    try:
        j = journeys()
        return {"sources": [out.source(s) for s in federation_admin.sources(j)],
                "problems": list(federation_admin.problems(j))}
    except federation_admin.Unavailable:
        return {"sources": [], "problems": []}


def entities(call: Call) -> dict[str, Any]:
    name = f"{call.path['folder'][:32]}/{call.path['name'][:64]}"
    text = call.query.get("page", "0")
    page = int(text) if text.isdigit() else 0
    try:
        shown = federation_admin.entities(journeys(), name, call.query.get("q", ""), page)
    except (federation_admin.UnknownSource, federation_admin.Unavailable) as exc:
        raise _unknown(name) from exc
    return {"source": out.source(shown.source), "q": shown.query, "page": shown.page, "more": shown.more,
            "entities": [out.entity(e) for e in shown.rows]}


def refresh(call: Call) -> dict[str, Any]:
    name = call.body.get("name")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "invalid_request", 'give the source\'s "name", as GET /federations lists it')
    try:
        result = federation_admin.refresh(journeys(), name[:200], call.caller.by)
    except (federation_admin.UnknownSource, federation_admin.Unavailable) as exc:
        raise _unknown(name) from exc
    return {"source": out.source(result.source), "finished": result.finished}


def signing_keys(call: Call) -> dict[str, Any]:
    try:
        return out.keys(key_admin.report(journeys()))
    except key_admin.Unavailable as exc:
        raise ApiError(404, "not_found", "this broker has no signing keys to show") from exc


def rotate(call: Call) -> dict[str, Any]:
    step, force = call.body.get("step"), call.body.get("force", False)
    if step not in {s.value for s in Step} or not isinstance(force, bool):
        raise ApiError(400, "invalid_request", '"step" is stage, switch or retire; "force" true or false')
    j = journeys()
    try:
        done = key_admin.rotate(j, Step(step), call.caller.by, force=force)
    except key_admin.RotationRefused as exc:
        raise ApiError(409, "refused", str(exc)) from exc
    return {"step": done.step.value, "said": done.said, "before": list(done.before), "after": list(done.after),
            "restart_needed": key_admin.RESTART_NEEDED, "keys": out.keys(key_admin.report(j))}


def release_policy(call: Call) -> dict[str, Any]:
    return out.policy(policy_admin.view(journeys()))


VIEW = Permission.VIEW_PARTIES
OPERATIONS = (
    Operation("GET", "/federations", "list-federations", "Every IdP metadata source and its state", federations,
              "Federations", VIEW),
    Operation("GET", "/federations/{folder}/{name}/entities", "list-federation-entities",
              "A metadata source's identity providers, 50 a page, by display name", entities, "FederationEntities",
              VIEW, query=(Param("q", "only those whose name or entity id has every word", 200),
                           Param("page", "the page, from 0", 5, integer=True)), errors=(404,),
              description="folder is federation or saml-idp: the source federation/fed is "
                          "/federations/federation/fed/entities."),
    Operation("POST", "/federations/refresh", "refresh-federation", "Refresh a metadata source now", refresh,
              "Refreshed", Permission.MANAGE_PARTIES, body="RefreshRequest", errors=(404,),
              description="The refresh the background runs, waited for a bounded time; one that fails keeps the "
                          "last good copy and reports its error. Audited with who asked."),
    Operation("GET", "/keys", "signing-keys", "The signing keys, where their rotation stands and the next step",
              signing_keys, "Keys", VIEW),
    Operation("POST", "/keys/rotate", "rotate-keys", "Run a signing-key rotation step (as broker keys rotate)",
              rotate, "Rotated", Permission.MANAGE_KEYS, fresh=True, body="RotateRequest", errors=(409,),
              description="409 refused when the step cannot run now (out of order, or before its waiting period "
                          "without force). Every instance must be restarted afterwards. Audited with who and the "
                          "active key ids before and after."),
    Operation("GET", "/policy", "release-policy", "The release policy in force and the consents per version",
              release_policy, "ReleasePolicy", VIEW),
    *policy_changes.OPERATIONS,  # preview, apply, past versions (``policy_changes``)
)
