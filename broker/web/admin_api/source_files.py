"""Adding and removing IdP metadata sources through the admin API (issue 19; ``broker.journeys.source_admin``), as
the console's federations page does: ``POST /federations/preview`` checks a source exactly as the IdP directory
will load it and answers the identity providers found, the problems and the diff (nothing written);
``POST /federations`` writes it (409 ``refused`` with the problems when it would not load); ``POST
/federations/remove`` deletes it. The metadata and certificates travel as text in the JSON body.
"""

from __future__ import annotations

from typing import Any

from broker.core.operators import Permission
from broker.core.source_admin import MAX_SOURCE_DOCUMENT, RegistrationRefused, SourceDraft, SourceKind
from broker.journeys import source_admin
from broker.web.admin_api import schemas_operations as out
from broker.web.admin_api.operation import ApiError, Call, Operation
from broker.web.renderer import journeys

_KINDS = ", ".join(k.value for k in SourceKind)


def _text(call: Call, key: str) -> bytes | None:
    value = call.body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_SOURCE_DOCUMENT:
        raise ApiError(400, "invalid_request", f'"{key}" is text of at most {MAX_SOURCE_DOCUMENT} characters, or null')
    return value.encode() or None


def _target(call: Call) -> tuple[SourceKind, str]:
    kind, name = call.body.get("kind"), call.body.get("name")
    if kind not in {k.value for k in SourceKind} or not isinstance(name, str) or not name:
        raise ApiError(400, "invalid_request", f'give "kind" ({_KINDS}) and the source\'s "name"')
    return SourceKind(kind), name[:64]


def _draft(call: Call) -> SourceDraft:
    kind, name = _target(call)
    url, interval = call.body.get("url"), call.body.get("refresh_interval")
    if url is not None and not isinstance(url, str):
        raise ApiError(400, "invalid_request", '"url" is text or null')
    if interval is not None and (not isinstance(interval, int) or isinstance(interval, bool)):
        raise ApiError(400, "invalid_request", '"refresh_interval" is a whole number of seconds or null')
    return SourceDraft(kind, name, _text(call, "document"), _text(call, "certificate"), url[:2048] if url else None,
                       interval)


def preview(call: Call) -> dict[str, Any]:
    """Nothing is written; ``problems`` say why the directory would not load it."""
    return out.source_preview(source_admin.preview(journeys(), _draft(call)))


def add(call: Call) -> dict[str, Any]:
    try:
        return out.source_preview(source_admin.apply(journeys(), call.caller.by, _draft(call)))
    except RegistrationRefused as exc:
        raise ApiError(409, "refused", "; ".join(exc.problems)) from exc


def remove(call: Call) -> dict[str, Any]:
    try:
        removed = source_admin.remove(journeys(), call.caller.by, *_target(call))
    except RegistrationRefused as exc:
        raise ApiError(404, "not_found", "; ".join(exc.problems)) from exc
    return {"kind": removed.kind.value, "name": removed.name, "files": list(removed.files)}


MANAGE = Permission.MANAGE_PARTIES
OPERATIONS = (
    Operation("POST", "/federations/preview", "preview-federation-source",
              "Check an IdP metadata file or a federation feed as the broker will load it", preview, "SourcePreview",
              MANAGE, body="SourceRequest",
              description="Nothing is written. kind idp-file: document (the metadata XML) and optionally certificate "
                          "(the signer's PEM: the signature is then required); kind federation: url, certificate "
                          "(the pinned PEM) and refresh_interval."),
    Operation("POST", "/federations", "add-federation-source", "Add or replace an IdP metadata source", add,
              "SourcePreview", MANAGE, fresh=True, body="SourceRequest", errors=(409,),
              description="409 refused with the problems when it would not load; nothing is then written. The "
                          "broker takes the source up at once (a feed is fetched). Audited with who and the changes."),
    Operation("POST", "/federations/remove", "remove-federation-source", "Remove an IdP metadata source", remove,
              "SourceRemoved", MANAGE, fresh=True, body="SourceRemoveRequest", errors=(404,),
              description="Deletes the source's file (and a federation's pinned certificate written for it); its "
                          "identity providers leave the discovery page. Audited with who and the files."),
)
