"""The JSON Schemas of the admin API's federation (and metadata source), signing-key and release-policy answers
(issue 19), and the functions that write them, side by side (as ``schemas``, which merges these into ``COMPONENTS``)."""

from __future__ import annotations

from typing import Any

from broker.core.federations import EntityRow, SourceReport
from broker.core.signing_keys import KeysReport, KeyState, Step
from broker.core.source_admin import SourceKind, SourcePreview
from broker.journeys.policy_admin import PolicyView
from broker.journeys.policy_edit import PastVersion, PolicyApplied, PolicyPreview

_TIME: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
_TEXT: dict[str, Any] = {"type": ["string", "null"]}
_NAMES: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
_NAMES_OR_NULL: dict[str, Any] = {"type": ["array", "null"], "items": {"type": "string"},
                                  "description": "null: every claim of [broker] release_claims"}
_STEP: dict[str, Any] = {"type": "string", "enum": [s.value for s in Step]}
_SOURCE_KIND: dict[str, Any] = {"type": "string", "enum": [k.value for k in SourceKind]}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


SOURCE = _object({"name": {"type": "string"}, "kind": {"type": "string", "enum": ["url", "file"]},
                  "location": {"type": "string"}, "entities": {"type": "integer"}, "valid_until": _TIME,
                  "loaded_at": _TIME, "attempted_at": _TIME, "next_refresh": _TIME, "last_error": _TEXT,
                  "expired": {"type": "boolean"}})
_ENTITY = _object({"entity_id": {"type": "string"}, "display_name": {"type": "string"}})
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
        "entities": {"type": "array", "items": _ENTITY}}),
    "RefreshRequest": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "description": "the source's name, as GET /federations lists it"}}},
    "Refreshed": _object({"source": SOURCE, "finished": {
        "type": "boolean", "description": "false: still running after the wait; GET /federations shows the outcome"}}),
    "SourceRequest": {"type": "object", "required": ["kind", "name"], "properties": {
        "kind": _SOURCE_KIND, "name": {"type": "string", "description": "1-63 lowercase letters, digits, - or _"},
        "document": {**_TEXT, "description": "idp-file: the metadata XML"},
        "certificate": {**_TEXT, "description": "PEM: idp-file, the signer's (optional); federation, pinned"},
        "url": {**_TEXT, "description": "federation: the feed's https URL"},
        "refresh_interval": {"type": ["integer", "null"], "description": "federation: seconds, at least 60"}}},
    "SourcePreview": _object({
        "kind": _SOURCE_KIND, "name": {"type": "string"}, "files": _NAMES, "problems": _NAMES, "notes": _NAMES,
        "replaces": {"type": "boolean"}, "entity_count": {"type": "integer"},
        "entities": {"type": "array", "items": _ENTITY},
        "facts": {"type": "array", "items": _object({"label": {"type": "string"}, "value": {"type": "string"}})},
        "changes": {"type": "array", "items": _object({"field": {"type": "string"}, "before": _TEXT,
                                                        "after": _TEXT})}}),
    "SourceRemoveRequest": {"type": "object", "required": ["kind", "name"], "properties": {
        "kind": _SOURCE_KIND, "name": {"type": "string"}}},
    "SourceRemoved": _object({"kind": _SOURCE_KIND, "name": {"type": "string"}, "files": _NAMES}),
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


# -- changing the release policy (``broker.web.admin_api.policy_changes``) ------------------------------------------
_CHANGES: dict[str, Any] = {"type": ["object", "null"], "description": "null: the text would not load", "properties": {
    "version_before": {"type": "string"}, "version_after": {"type": "string"},
    "changes": {"type": "array", "items": _object({
        "scope": {"type": "string", "description": "default, or the app's id"},
        "field": {"type": "string", "enum": ["rule", "allow", "consent_exempt"]},
        "before": {"type": "string"}, "after": {"type": "string"}, "added": _NAMES, "removed": _NAMES})},
    "notes": {"type": "array", "items": _object({"code": {"type": "string"}, "text": {"type": "string"},
                                                  "subject": {"type": "string"}})}},
    "required": ["version_before", "version_after", "changes", "notes"]}
_PAST = _object({"name": {"type": "string"}, "version": {"type": "string"},
                 "replaced_at": {"type": "string", "format": "date-time"}, "replaced_by": _TEXT,
                 "consents": {"type": "integer"}, "text": {"type": "string"}})
OPERATION_COMPONENTS.update({
    "PolicyRequest": {"type": "object", "required": ["document"], "properties": {
        "document": {"type": "string", "description": "the text of metadata/release-policy.toml"}}},
    "PolicyPreview": _object({"problems": _NAMES, "changes": _CHANGES}),
    "PolicyApplied": _object({"problems": _NAMES, "changes": _CHANGES, "changed": {"type": "boolean"},
                              "replaced": {"type": ["string", "null"], "description": "the past version kept"}}),
    "PolicyVersions": _object({"versions": {"type": "array", "items": _PAST}}),
})


def policy_preview(p: PolicyPreview) -> dict[str, Any]:
    c = p.changes
    return {"problems": list(p.problems), "changes": None if c is None else {
        "version_before": c.version_before, "version_after": c.version_after,
        "changes": [{"scope": r.scope, "field": r.field, "before": r.before, "after": r.after,
                     "added": list(r.added), "removed": list(r.removed)} for r in c.changes],
        "notes": [{"code": n.code, "text": n.text, "subject": n.subject} for n in c.notes]}}


def policy_applied(a: PolicyApplied) -> dict[str, Any]:
    return {**policy_preview(a.preview), "changed": a.written.changed,
            "replaced": a.written.replaced.name if a.written.replaced is not None else None}


def past_version(v: PastVersion) -> dict[str, Any]:
    return {"name": v.past.name, "version": v.past.version, "replaced_at": v.past.replaced_at.isoformat(),
            "replaced_by": v.by, "consents": v.consents, "text": v.text}


def source_preview(p: SourcePreview) -> dict[str, Any]:
    return {"kind": p.kind.value, "name": p.name, "files": list(p.files), "problems": list(p.problems),
            "notes": list(p.notes), "replaces": p.replaces, "entity_count": p.entity_count,
            "entities": [entity(e) for e in p.entities],
            "facts": [{"label": label, "value": value} for label, value in p.facts],
            "changes": [{"field": c.field, "before": c.before, "after": c.after} for c in p.changes]}
