"""The help desk's look-up of one citizen and disabling or enabling an account (``broker.journeys.citizen_lookup``,
``broker.journeys.account_status``), as the console does them. A look-up finds one citizen by one key, never a list
of all, and is an audit record of each account it finds; the summary holds no claim value (showing those stays a
console step for people, ``reveal-claims``)."""

from __future__ import annotations

from typing import Any

from broker.core.operators import Permission
from broker.journeys import account_status, citizen_lookup
from broker.journeys.account_status import StatusChange
from broker.web.admin_api.operation import ApiError, Call, Operation, Param
from broker.web.admin_api.schemas import records, when
from broker.web.renderer import journeys

MAX_ACCOUNT_ID = 36


def _bad(description: str) -> ApiError:
    return ApiError(400, "invalid_request", description)


def find(call: Call) -> dict[str, Any]:
    """One of ``email``, ``upstream`` or ``app`` with ``subject``, ``reference`` or ``account``."""
    q, j, by = call.query, journeys(), call.caller.by
    ways = [name for name in ("email", "upstream", "app", "reference", "account") if q.get(name)]
    if len(ways) != 1 or (ways[0] in ("upstream", "app")) != bool(q.get("subject")):
        raise _bad("give exactly one of email, upstream with subject, app with subject, reference or account")
    way = ways[0]
    if way == "upstream":  # the subject is the value, at that upstream
        found = citizen_lookup.find(j, by, "method", q["subject"], q["upstream"])
    elif way == "app":  # the subject that app knows the citizen by
        found = citizen_lookup.find(j, by, "app", q["subject"], app=q["app"])
    else:
        found = citizen_lookup.find(j, by, way, q[way][:MAX_ACCOUNT_ID] if way == "account" else q[way])
    return {"accounts": list(found.accounts), "records": records(found.records)}


def _unknown() -> ApiError:
    return ApiError(404, "not_found", "there is no such account")


def show(call: Call) -> dict[str, Any]:
    """The account's summary: how it signs in, where it is signed in, its consents, factors and recent trouble."""
    j = journeys()
    found = citizen_lookup.by_account(j, call.caller.by, call.path["account_id"][:MAX_ACCOUNT_ID])
    shown = citizen_lookup.summary(j, found.accounts[0]) if found.accounts else None
    if shown is None:
        raise _unknown()
    return {
        "account_id": shown.account_id, "created_at": when(shown.created_at), "disabled_at": when(shown.disabled_at),
        "methods": [{"upstream": m.upstream, "display_name": m.display_name, "first_used": when(m.first_used),
                     "last_used": when(m.last_used)} for m in shown.methods],
        "sessions": [{"upstream": s.upstream, "created_at": when(s.created_at), "last_seen": when(s.last_seen),
                      "expires_at": when(s.expires_at), "user_agent": s.user_agent} for s in shown.sessions],
        "consents": [{"app": c.party_id, "at": when(c.at), "how": c.how.value,
                      "granted": sorted(c.granted), "declined": sorted(c.declined)} for c in shown.consents],
        "factors": [{"kind": f.kind.value, "created_at": when(f.created_at),
                     "last_used_at": when(f.last_used_at)} for f in shown.factors],
        "recent": records(shown.recent),
        "failures": records(shown.failures),
    }


def _change(change: StatusChange, disabled_after: bool) -> dict[str, Any]:
    after = "disabled" if disabled_after else "enabled"
    before = after if not change.changed else ("enabled" if disabled_after else "disabled")
    return {"account_id": change.account_id, "changed": change.changed, "before": before, "after": after,
            "sessions_ended": change.sessions_ended, "events_queued": change.events_queued}


def disable(call: Call) -> dict[str, Any]:
    """Disable the account (``account_status.disable``): its sessions end, its grants are revoked, apps are told."""
    reason = call.body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise _bad("reason must be text")
    try:
        change = account_status.disable(journeys(), call.path["account_id"][:MAX_ACCOUNT_ID], reason, call.caller.by)
    except account_status.UnknownAccount as exc:
        raise _unknown() from exc
    except ValueError as exc:
        raise _bad(str(exc)) from exc
    return _change(change, disabled_after=True)


def enable(call: Call) -> dict[str, Any]:
    try:
        change = account_status.enable(journeys(), call.path["account_id"][:MAX_ACCOUNT_ID], call.caller.by)
    except account_status.UnknownAccount as exc:
        raise _unknown() from exc
    return _change(change, disabled_after=False)


LOOK_UP, MANAGE = Permission.LOOK_UP_CITIZENS, Permission.MANAGE_CITIZENS
OPERATIONS = (
    Operation("GET", "/citizens", "find-citizen", "Find one citizen", find, "Found", LOOK_UP,
              query=(Param("email", "a verified e-mail address (never stored or audited)"),
                     Param("upstream", "an upstream's registered name, with subject", 255),
                     Param("app", "an app's entity ID or client ID, with subject: the id that app knows the "
                                  "citizen by (OIDC sub, SAML persistent NameID)", 1024),
                     Param("subject", "the subject that upstream asserts, or that app knows", 255),
                     Param("reference", "a support reference from an error page", 64),
                     Param("account", "an account id", MAX_ACCOUNT_ID)),
              description="By exactly one key; never a list of all citizens. Each account found gets an audit "
                          "record naming who looked it up and how."),
    Operation("GET", "/citizens/{account_id}", "show-citizen", "A citizen's summary", show, "Citizen", LOOK_UP,
              errors=(404,), description="Sign-in methods, sessions, consents, factors and recent failures; no claim "
                                         "value. Audited as a look-up."),
    Operation("POST", "/citizens/{account_id}/disable", "disable-citizen", "Disable an account", disable,
              "StatusChange", MANAGE, fresh=True, body="DisableRequest", errors=(404,),
              description="Ends the account's sessions, revokes its grants and tells the apps (RISC "
                          "account-disabled)."),
    Operation("POST", "/citizens/{account_id}/enable", "enable-citizen", "Enable an account again", enable,
              "StatusChange", MANAGE, fresh=True, errors=(404,)),
)
