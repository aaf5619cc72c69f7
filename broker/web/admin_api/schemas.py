"""The JSON Schemas (2020-12, as OpenAPI 3.1 §4.8.24 uses them) of what the admin API reads and answers, and
the functions that write those answers, side by side so a field added to one is seen in the other (the flow
tests validate real answers against these schemas)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from broker.core.audit_chain import ChainedRecord
from broker.core.operators import Permission, Role
from broker.core.party_admin import SAML_SETTINGS, AppKind
from broker.web.admin_api.schemas_operations import OPERATION_COMPONENTS

TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
TIME_OR_NULL: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
TEXT_OR_NULL: dict[str, Any] = {"type": ["string", "null"]}
ROLE: dict[str, Any] = {"type": "string", "enum": [r.value for r in Role]}
PERMISSION: dict[str, Any] = {"type": "string", "enum": [p.value for p in Permission]}
APP_KIND: dict[str, Any] = {"type": "string", "enum": [k.value for k in AppKind]}


def _object(properties: dict[str, Any], optional: Iterable[str] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties,
            "required": [name for name in properties if name not in set(optional)]}


def _list_of(ref: str) -> dict[str, Any]:
    return {"type": "array", "items": {"$ref": f"#/components/schemas/{ref}"}}


APP_PREVIEW: dict[str, Any] = {
    "kind": APP_KIND, "party_ids": {"type": "array", "items": {"type": "string"}}, "file": {"type": "string"},
    "problems": {"type": "array", "items": {"type": "string"}}, "replaces": {"type": "boolean"},
    "facts": {"type": "array", "items": {"type": "object", "required": ["label", "value"], "properties": {
        "label": {"type": "string"}, "value": {"type": "string"}}}},
    "changes": {"type": "array", "items": {"type": "object", "required": ["party", "field", "before", "after"],
                                           "properties": {"party": {"type": "string"}, "field": {"type": "string"},
                                                          "before": TEXT_OR_NULL, "after": TEXT_OR_NULL}}},
}

COMPONENTS: dict[str, dict[str, Any]] = {
    "Error": _object({"error": {"type": "string"}, "error_description": {"type": "string"}}),
    "WhoAmI": _object({
        "kind": {"type": "string", "enum": ["operator", "client"]},
        "id": {"type": "string", "description": "the operator's account id, or the client's client_id"},
        "roles": {"type": "array", "items": ROLE},
        "permissions": {"type": "array", "items": PERMISSION},
        "csrf_token": {"type": "string", "description": "console sessions only: send it as X-CSRFToken"},
    }, optional=("csrf_token",)),
    "AuditRecord": _object({
        "chain": {"type": "integer", "minimum": 1, "description": "the hash chain the record is in (1 to 8)"},
        "seq": {"type": "integer", "description": "the record's place in its chain"}, "at": TIME,
        "kind": {"type": "string"}, "account_id": TEXT_OR_NULL,
        "upstream": TEXT_OR_NULL, "downstream": TEXT_OR_NULL, "reason": TEXT_OR_NULL, "reference": TEXT_OR_NULL,
        "hash": {"type": "string"},
    }),
    "AuditRecords": _object({"records": _list_of("AuditRecord")}),
    "ChainCheck": _object({
        "intact": {"type": "boolean"},
        "records": {"type": "integer", "description": "the records in all chains"},
        "head": {"oneOf": [{"type": "null"}, _object({"seq": {"type": "integer"}, "hash": {"type": "string"}})],
                 "description": "all chains as one: seq the number of records, hash the combined digest (SHA-256 of "
                                "the anchor); null when a chain's head is missing"},
        "heads": {"type": "array", "description": "each chain's newest record as its head row names it",
                  "items": _object({"chain": {"type": "integer"}, "seq": {"type": "integer"},
                                    "hash": {"type": "string"}})},
        "anchor": {"type": "string", "description": "the heads as <chain>:<seq>:<hash>, comma separated: what "
                                                    "`broker audit verify --anchor` checks later"},
        "problem": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/ChainProblem"}],
                    "description": "the first of problems"},
        "problems": _list_of("ChainProblem"),
    }),
    "ChainProblem": _object({"kind": {"type": "string"}, "chain": {"type": "integer"}, "seq": {"type": "integer"},
                             "message": {"type": "string"}}),
    "Found": _object({"accounts": {"type": "array", "items": {"type": "string"}},
                      "records": _list_of("AuditRecord")}),
    "Citizen": _object({
        "account_id": {"type": "string"}, "created_at": TIME, "disabled_at": TIME_OR_NULL,
        "methods": {"type": "array", "items": _object({"upstream": {"type": "string"},
                                                       "display_name": {"type": "string"},
                                                       "first_used": TIME, "last_used": TIME})},
        "sessions": {"type": "array", "items": _object({"upstream": {"type": "string"}, "created_at": TIME,
                                                        "last_seen": TIME, "expires_at": TIME,
                                                        "user_agent": {"type": "string"}})},
        "consents": {"type": "array", "items": _object({"app": {"type": "string"}, "at": TIME,
                                                        "how": {"type": "string"},
                                                        "granted": {"type": "array", "items": {"type": "string"}},
                                                        "declined": {"type": "array", "items": {"type": "string"}}})},
        "factors": {"type": "array", "items": _object({"kind": {"type": "string"}, "created_at": TIME,
                                                       "last_used_at": TIME_OR_NULL})},
        "recent": _list_of("AuditRecord"),
        "failures": _list_of("AuditRecord"),
    }),
    "DisableRequest": {"type": "object", "properties": {"reason": {
        "type": ["string", "null"], "maxLength": 255,
        "description": "hijacking or bulk-account (RISC 1.0 §2.3) reach apps and the audit log; other text is kept "
                       "with the account only"}}},
    "StatusChange": _object({
        "account_id": {"type": "string"}, "changed": {"type": "boolean"},
        "before": {"type": "string", "enum": ["enabled", "disabled"]},
        "after": {"type": "string", "enum": ["enabled", "disabled"]},
        "sessions_ended": {"type": "integer"}, "events_queued": {"type": "integer"},
    }),
    "Operators": _object({"grants": {"type": "array", "items": _object({
        "account_id": {"type": "string"}, "role": ROLE, "granted_by": {"type": "string"}, "granted_at": TIME})}}),
    "RoleChange": _object({
        "account_id": {"type": "string"}, "role": ROLE, "changed": {"type": "boolean"},
        "before": {"type": "array", "items": ROLE}, "after": {"type": "array", "items": ROLE},
    }),
    "OpenApiDocument": {"type": "object", "description": "this document"},
    "Apps": _object({"apps": {"type": "array", "items": _object({
        "kind": APP_KIND, "party_id": {"type": "string"}, "display_name": {"type": "string"},
        "file": {"type": "string"}, "enabled": {"type": "boolean"}})}}),
    "AppRequest": {"type": "object", "required": ["kind", "document"], "properties": {
        "kind": APP_KIND,
        "document": {"type": "string", "description": "SAML metadata XML, RFC 7591 client metadata JSON, or an "
                                                      "upstream's registration JSON (never a client_secret), as text"},
        "settings": {"type": "object", "description": "SAML apps only: display_name, allowed_upstreams, receive, "
                                                      "required, required_acr, default_upstream, logo_uri, policy_uri"},
    }},
    "AppPreview": _object(APP_PREVIEW),
    "AppRegistered": _object({**APP_PREVIEW, "client_secret": TEXT_OR_NULL}),
    "AppSettingsRequest": {"type": "object", "required": ["kind", "party_id"], "properties": {
        "kind": {"type": "string", "enum": [AppKind.SAML.value]}, "party_id": {"type": "string"},
        "settings": {"type": "object", "description": "the settings to set",
                     "properties": {key: {} for key in SAML_SETTINGS}, "additionalProperties": False},
        "clear": {"type": "array", "items": {"type": "string", "enum": list(SAML_SETTINGS)},
                  "description": "the settings to remove first, so the metadata or the default decides again"},
    }},
    "AppTarget": {"type": "object", "required": ["kind", "party_id"],
                  "properties": {"kind": APP_KIND, "party_id": {"type": "string"}}},
    "AppChanged": _object({"kind": APP_KIND, "party_id": {"type": "string"},
                           "done": {"type": "string", "enum": ["enable", "disable", "remove"]}}),
}


COMPONENTS.update(OPERATION_COMPONENTS)  # federations, signing keys, release policy (issue 19)


def when(moment: datetime | None) -> str | None:
    """RFC 3339 time (``date-time``), or None."""
    return moment.isoformat() if moment is not None else None


def record(r: ChainedRecord) -> dict[str, Any]:
    """An ``AuditRecord``: named by its chain and its ``seq`` in that chain (``seq`` alone repeats across chains)."""
    return {"chain": r.chain, "seq": r.seq, "at": when(r.at), "kind": r.kind, "account_id": r.account_id,
            "upstream": r.upstream, "downstream": r.downstream, "reason": r.reason, "reference": r.reference,
            "hash": r.hash}


def records(found: Iterable[ChainedRecord]) -> list[dict[str, Any]]:
    return [record(r) for r in found]

# roles for apps (issue 19; ``broker.web.admin_api.app_roles``, ``core.app_roles.AppRoles.as_json``)
_NAME_LIST: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
_ROLE_ACTIONS = ("define", "remove", "assign", "unassign", "map", "unmap")
COMPONENTS.update({
    "AppRoles": _object({
        "party_id": {"type": "string"},
        "roles": {"type": "array", "items": _object({"name": {"type": "string"}, "description": {"type": "string"},
                                                    "defined_by": {"type": "string"}, "defined_at": TIME})},
        "assignments": {"type": "array", "items": _object({"role": {"type": "string"},
                                                          "account_id": {"type": "string"},
                                                          "granted_by": {"type": "string"}, "granted_at": TIME})},
        "mappings": {"type": "array", "items": _object({"role": {"type": "string"}, "upstream": {"type": "string"},
                                                       "group": {"type": "string"}, "mapped_by": {"type": "string"},
                                                       "mapped_at": TIME})},
    }),
    "AppRolesRequest": {"type": "object", "required": ["party_id", "role"], "properties": {
        "party_id": {"type": "string", "maxLength": 1024, "description": "the app's entity id or client_id"},
        "role": {"type": "string", "maxLength": 64, "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"},
        "description": {"type": "string", "maxLength": 200, "description": "define only"},
        "account_id": {"type": "string", "description": "assign and unassign"},
        "upstream": {"type": "string", "maxLength": 256, "description": "map and unmap: the upstream's name"},
        "group": {"type": "string", "maxLength": 256, "description": "map and unmap: the group value it sends"},
    }},
    "AppRolesChange": _object({
        "party_id": {"type": "string"}, "action": {"type": "string", "enum": list(_ROLE_ACTIONS)},
        "changed": {"type": "boolean"}, "before": _NAME_LIST, "after": _NAME_LIST,
    }),
})
