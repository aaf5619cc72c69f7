"""Changing the release policy through the admin API (issue 19; ``broker.journeys.policy_edit``), as the console's
"Release policy" page does: a CI pipeline previews a new text (checked exactly as the registry will load it, with
the diff against the policy in force and what it means for citizens), applies it (``manage-parties``; people: a
fresh sign-in), and lists the past versions. The text travels as ``document`` in the JSON body.
"""

from __future__ import annotations

from typing import Any

from broker.core.operators import Permission
from broker.core.policy_report import MAX_POLICY, PolicyRefused
from broker.journeys import policy_edit
from broker.web.admin_api import schemas_operations as out
from broker.web.admin_api.operation import ApiError, Call, Operation
from broker.web.renderer import journeys


def _document(call: Call) -> bytes:
    document = call.body.get("document")
    if not isinstance(document, str) or not document.strip():
        raise ApiError(400, "invalid_request", 'give the policy\'s TOML text as "document"')
    encoded = document.encode()
    if len(encoded) > MAX_POLICY:
        raise ApiError(400, "invalid_request", f"the document is larger than {MAX_POLICY} bytes")
    return encoded


def preview(call: Call) -> dict[str, Any]:
    """Nothing is written; ``problems`` say why it would not load."""
    return out.policy_preview(policy_edit.preview(journeys(), _document(call)))


def apply(call: Call) -> dict[str, Any]:
    try:
        applied = policy_edit.apply(journeys(), call.caller.by, _document(call))
    except PolicyRefused as exc:
        raise ApiError(409, "refused", "; ".join(exc.problems)) from exc
    return out.policy_applied(applied)


def versions(call: Call) -> dict[str, Any]:
    return {"versions": [out.past_version(v) for v in policy_edit.versions(journeys())]}


OPERATIONS = (
    Operation("POST", "/policy/preview", "preview-release-policy",
              "Check a release policy text and show what it would change", preview, "PolicyPreview",
              Permission.MANAGE_PARTIES, body="PolicyRequest",
              description="Checked exactly as the broker loads metadata/release-policy.toml; nothing is written."),
    Operation("PUT", "/policy", "apply-release-policy", "Replace the release policy with a text", apply,
              "PolicyApplied", Permission.MANAGE_PARTIES, fresh=True, body="PolicyRequest", errors=(409,),
              description="409 refused, nothing written, when the text would not load. The replaced text is kept "
                          "as a past version (GET /policy/versions); the same text as in force writes nothing. "
                          "Audited with who and the changes. A new version asks every citizen for consent again."),
    Operation("GET", "/policy/versions", "release-policy-versions",
              "The past versions of the release policy, newest first", versions, "PolicyVersions",
              Permission.VIEW_PARTIES),
)
