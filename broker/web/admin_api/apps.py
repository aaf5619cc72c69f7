"""Registering apps through the admin API (``broker.journeys.app_admin``), as the console's "Apps" pages do: a CI
pipeline previews an app's metadata (validated exactly as the broker will load it, with the diff against the
current registration) and registers it, with a client holding ``admin:manage-parties``.

The document travels as text in the JSON body (SAML metadata XML, RFC 7591 §2 client metadata JSON, or an
upstream identity provider's registration JSON, kind ``upstream``, which names where its secret lives and never
holds it); a SAML app's operator settings (display name, allowed upstreams, released claims, required acr) as an
object. ``/apps/settings`` changes a registered SAML app's settings as ``broker sp set`` does: ``clear`` removed,
``settings`` set, the others kept. Entity ids are URLs, so an app is named in the body, never in the path.
"""

from __future__ import annotations

from typing import Any

from broker.core.operators import Permission
from broker.core.party_admin import MAX_DOCUMENT, SAML_SETTINGS, AppKind, AppPreview, RegistrationRefused
from broker.journeys import app_admin
from broker.web.admin_api.operation import ApiError, Call, Operation
from broker.web.renderer import journeys


def _request(call: Call) -> tuple[AppKind, bytes, dict[str, object]]:
    kind, document, settings = call.body.get("kind"), call.body.get("document"), call.body.get("settings", {})
    if kind not in {k.value for k in AppKind} or not isinstance(document, str) or not document:
        raise ApiError(400, "invalid_request", 'give "kind" (saml, oidc or upstream) and the metadata or '
                                               'registration as "document" text')
    if not isinstance(settings, dict) or (settings and kind != AppKind.SAML.value):
        raise ApiError(400, "invalid_request", '"settings" is an object, and only for a SAML app')
    encoded = document.encode()
    if len(encoded) > MAX_DOCUMENT:
        raise ApiError(400, "invalid_request", f"the document is larger than {MAX_DOCUMENT} bytes")
    return AppKind(kind), encoded, settings


def _target(call: Call) -> tuple[AppKind, str]:
    kind, party_id = call.body.get("kind"), call.body.get("party_id")
    if kind not in {k.value for k in AppKind} or not isinstance(party_id, str) or not party_id:
        raise ApiError(400, "invalid_request", 'give "kind" (saml, oidc or upstream) and the app\'s "party_id"')
    return AppKind(kind), party_id[:1024]


def _settings_request(call: Call) -> tuple[AppKind, str, dict[str, object], list[str]]:
    kind, party_id = _target(call)
    settings, clear = call.body.get("settings", {}), call.body.get("clear", [])
    if not isinstance(settings, dict) or not isinstance(clear, list) or len(clear) > len(SAML_SETTINGS) \
            or not all(isinstance(key, str) for key in clear):
        raise ApiError(400, "invalid_request", '"settings" is an object, "clear" a list of setting names')
    return kind, party_id, settings, clear


def _preview(shown: AppPreview) -> dict[str, Any]:
    return {"kind": shown.kind.value, "party_ids": list(shown.party_ids), "file": shown.file,
            "problems": list(shown.problems), "replaces": shown.replaces,
            "facts": [{"label": label, "value": value} for label, value in shown.facts],
            "changes": [{"party": c.party, "field": c.field, "before": c.before, "after": c.after}
                        for c in shown.changes]}


def listing(call: Call) -> dict[str, Any]:
    return {"apps": [{"kind": a.kind.value, "party_id": a.party_id, "display_name": a.display_name,
                      "file": a.file, "enabled": a.enabled} for a in app_admin.apps(journeys())]}


def preview(call: Call) -> dict[str, Any]:
    """Nothing is written; ``problems`` say why it could not be registered."""
    return _preview(app_admin.preview(journeys(), *_request(call), call.caller.permissions))


def register(call: Call) -> dict[str, Any]:
    try:
        applied = app_admin.apply(journeys(), call.caller.by, *_request(call), call.caller.permissions)
    except RegistrationRefused as exc:
        raise ApiError(409, "refused", "; ".join(exc.problems)) from exc
    return {**_preview(applied.preview), "client_secret": applied.client_secret}


def preview_settings(call: Call) -> dict[str, Any]:
    """Nothing is written; ``problems`` say why the settings would not load."""
    return _preview(app_admin.preview_settings(journeys(), *_settings_request(call)))


def apply_settings(call: Call) -> dict[str, Any]:
    try:
        return _preview(app_admin.apply_settings(journeys(), call.caller.by, *_settings_request(call)))
    except RegistrationRefused as exc:
        raise ApiError(409, "refused", "; ".join(exc.problems)) from exc


def _changed(call: Call, action: str) -> dict[str, Any]:
    kind, party_id = _target(call)
    try:
        if action == "remove":
            app_admin.remove(journeys(), call.caller.by, kind, party_id)
        else:
            app_admin.set_enabled(journeys(), call.caller.by, kind, party_id, action == "enable")
    except RegistrationRefused as exc:
        raise ApiError(409, "refused", "; ".join(exc.problems)) from exc
    return {"kind": kind.value, "party_id": party_id, "done": action}


MANAGE = Permission.MANAGE_PARTIES
OPERATIONS = (
    Operation("GET", "/apps", "list-apps", "Every registered app", listing, "Apps", Permission.VIEW_PARTIES),
    Operation("POST", "/apps/preview", "preview-app", "Check an app's metadata and show what would change", preview,
              "AppPreview", MANAGE, body="AppRequest"),
    Operation("POST", "/apps", "register-app", "Register (or replace) an app or an upstream from its document",
              register, "AppRegistered", MANAGE, fresh=True, body="AppRequest", errors=(409,),
              description="Validated again before anything is written. A new OpenID client that authenticates with "
                          "a secret gets one, in client_secret, shown this once. Audited with who registered it."),
    Operation("POST", "/apps/settings/preview", "preview-app-settings",
              "Check a SAML app's changed settings and show what would change", preview_settings, "AppPreview",
              MANAGE, body="AppSettingsRequest"),
    Operation("POST", "/apps/settings", "set-app-settings", "Change a SAML app's operator settings",
              apply_settings, "AppPreview", MANAGE, fresh=True, body="AppSettingsRequest", errors=(409,),
              description="As broker sp set: the keys in clear are removed, those in settings set, the others "
                          "kept; validated with the app's metadata before anything is written. Audited with who "
                          "changed them and each field before and after."),
    Operation("POST", "/apps/disable", "disable-app", "Stop serving a SAML app (its registration stays)",
              lambda call: _changed(call, "disable"), "AppChanged", MANAGE, fresh=True, body="AppTarget",
              errors=(409,)),
    Operation("POST", "/apps/enable", "enable-app", "Serve a switched-off SAML app again",
              lambda call: _changed(call, "enable"), "AppChanged", MANAGE, fresh=True, body="AppTarget",
              errors=(409,)),
    Operation("POST", "/apps/remove", "remove-app", "Remove an app's or an upstream's registration",
              lambda call: _changed(call, "remove"), "AppChanged", MANAGE, fresh=True, body="AppTarget",
              errors=(409,)),
)
