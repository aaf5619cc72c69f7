"""The JSON Schemas of the admin API's federation, signing-key and release-policy answers (issue 19), and the
functions that write them, side by side (as ``schemas``, which merges these into ``COMPONENTS``)."""

from __future__ import annotations

from typing import Any

from broker.core.federations import EntityRow, SourceReport
from broker.core.signing_keys import KeysReport, KeyState, Step
from broker.journeys.policy_admin import PolicyView

_TIME: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
_TEXT: dict[str, Any] = {"type": ["string", "null"]}
_NAMES: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
_NAMES_OR_NULL: dict[str, Any] = {"type": ["array", "null"], "items": {"type": "string"},
                                  "description": "null: every claim of [broker] release_claims"}
_STEP: dict[str, Any] = {"type": "string", "enum": [s.value for s in Step]}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


SOURCE = _object({"name": {"type": "string"}, "kind": {"type": "string", "enum": ["url", "file"]},
                  "location": {"type": "string"}, "entities": {"type": "integer"}, "valid_until": _TIME,
                  "loaded_at": _TIME, "attempted_at": _TIME, "next_refresh": _TIME, "last_error": _TEXT,
                  "expired": {"type": "boolean"}})
KEYS = _object({
    "phase": {"type": "string", "enum": ["steady", "staged", "grace"]}, "next_step": _STEP, "ready_at": _TIME,
    "keys": {"type": "array", "items": _object({
        "kid": {"type": "string"}, "alg": {"type": "string"},
        "state": {"type": "string", "enum": [s.value for s in KeyState]},
        "created": _TIME, "since": _TIME, "published_until": _TIME})}})

OPERATION_COMPONENTS: dict[str, dict[str, Any]] = {
    "Federations": _object({"sources": {"type": "array", "items": SOURCE}, "problems": _NAMES}),
    "FederationEntities": _object({
        "source": SOURCE, "q": {"type": "string"}, "page": {"type": "integer"}, "more": {"type": "boolean"},
        "entities": {"type": "array", "items": _object({"entity_id": {"type": "string"},
                                                         "display_name": {"type": "string"}})}}),
    "RefreshRequest": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "description": "the source's name, as GET /federations lists it"}}},
    "Refreshed": _object({"source": SOURCE, "finished": {
        "type": "boolean", "description": "false: still running after the wait; GET /federations shows the outcome"}}),
    "Keys": KEYS,
    "RotateRequest": {"type": "object", "required": ["step"], "properties": {
        "step": _STEP, "force": {"type": "boolean", "description": "skip the step's waiting period"}}},
    "Rotated": _object({"step": _STEP, "said": {"type": "string"}, "before": _NAMES, "after": _NAMES,
                        "restart_needed": {"type": "string"}, "keys": KEYS}),
    "ReleasePolicy": _object({
        "version": {"type": "string"}, "file": {"type": "string"}, "file_exists": {"type": "boolean"},
        "release_claims": _NAMES, "default_allow": _NAMES_OR_NULL, "default_consent_exempt": {"type": "boolean"},
        "apps": {"type": "array", "items": _object({"party_id": {"type": "string"}, "allow": _NAMES_OR_NULL,
                                                    "consent_exempt": {"type": "boolean"}})},
        "consent_exempt_apps": _NAMES, "problems": _NAMES,
        "versions": {"type": "array", "items": _object({"version": {"type": "string"}, "consents": {"type": "integer"},
                                                        "in_force": {"type": "boolean"}})}}),
}


def _when(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


def source(s: SourceReport) -> dict[str, Any]:
    return {"name": s.name, "kind": s.kind, "location": s.location, "entities": s.entities,
            "valid_until": _when(s.valid_until), "loaded_at": _when(s.loaded_at), "attempted_at": _when(s.attempted_at),
            "next_refresh": _when(s.next_refresh), "last_error": s.last_error, "expired": s.expired}


def entity(e: EntityRow) -> dict[str, Any]:
    return {"entity_id": e.entity_id, "display_name": e.display_name}


def keys(report: KeysReport) -> dict[str, Any]:
    return {"phase": report.phase, "next_step": report.next_step.value, "ready_at": _when(report.ready_at),
            "keys": [{"kid": k.kid, "alg": k.alg, "state": k.state.value, "created": _when(k.created),
                      "since": _when(k.since), "published_until": _when(k.published_until)} for k in report.keys]}


def policy(p: PolicyView) -> dict[str, Any]:
    return {"version": p.version, "file": p.file, "file_exists": p.file_exists,
            "release_claims": list(p.release_claims),
            "default_allow": list(p.default_allow) if p.default_allow is not None else None,
            "default_consent_exempt": p.default_exempt,
            "apps": [{"party_id": r.party_id, "allow": list(r.allow) if r.allow is not None else None,
                      "consent_exempt": r.consent_exempt} for r in p.rules],
            "consent_exempt_apps": list(p.exempt_apps), "problems": list(p.problems),
            "versions": [{"version": v.version, "consents": v.consents, "in_force": v.in_force} for v in p.versions]}
