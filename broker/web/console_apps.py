"""The operator console's apps (issue 19): the registered apps and upstream identity providers, and registering
one from the metadata its vendor sent or an upstream from its registration JSON (``broker.journeys.app_admin``).

Registering is two steps: the upload is validated exactly as the broker will load it and shown with what the
broker read from it and the diff against the current registration (a preview, nothing written); "Apply"
registers *that* document, kept server-side between the steps (``ConsoleAppPreview``: this browser, this
operator, once), after a sign-in at most ``[console] reauth_minutes`` old. Switching a SAML app off or on and
removing an app are forms of the list (upstreams are removed, never switched off: the registry has no such
setting). A new OpenID client's secret is shown once, on the page after "Apply". A SAML app's settings page is
``console_app_settings``'s.
"""

from __future__ import annotations

import json

from flask import Blueprint, request, url_for
from werkzeug.wrappers import Response

from broker.core.console_records import ConsoleAppPreview
from broker.core.operators import Permission, permissions_of
from broker.core.party_admin import MAX_DOCUMENT, AppKind, RegistrationRefused
from broker.journeys import app_admin, console
from broker.web import console_app_settings
from broker.web.console import operator_page, page
from broker.web.http.journey_context import support_reference
from broker.web.renderer import browser, journeys

bp = Blueprint("console_apps", __name__, url_prefix="/console/apps")
bp.register_blueprint(console_app_settings.bp)
#: the operator's settings of a SAML app the form offers (``broker.registry.sp_settings``), lists comma-separated
TEXT_SETTINGS = ("display_name", "logo_uri", "policy_uri", "default_upstream", "required_acr")
LIST_SETTINGS = ("allowed_upstreams", "receive", "required")


def _kind(text: str) -> AppKind | None:
    try:
        return AppKind(text)
    except ValueError:
        return None


def _settings() -> dict[str, object]:
    settings: dict[str, object] = {k: v for k in TEXT_SETTINGS if (v := request.form.get(k, "").strip()[:1024])}
    for key in LIST_SETTINGS:
        items = [item.strip() for item in request.form.get(key, "").split(",") if item.strip()]
        if items:
            settings[key] = items[:100]
    return settings


def _document() -> bytes:
    upload = request.files.get("file")
    data = upload.read(MAX_DOCUMENT + 1) if upload is not None and upload.filename else b""
    return data or request.form.get("text", "").encode()


def _error(status: int, message: str) -> Response:
    return page("error.html", status, message=message, reference=support_reference())


@bp.get("/")
def apps() -> Response:
    """The apps, then the upstream identity providers, in a table each."""
    def view(op: console.Operator) -> Response:
        entries = app_admin.apps(journeys())
        return page("console_apps.html", operator=op, apps=[e for e in entries if e.kind is not AppKind.UPSTREAM],
                    upstreams=[e for e in entries if e.kind is AppKind.UPSTREAM])
    return operator_page(Permission.VIEW_PARTIES, view)


@bp.get("/new")
def new() -> Response:
    return operator_page(Permission.MANAGE_PARTIES, lambda op: page("console_app_new.html", operator=op))


@bp.get("/upstreams/new")
def new_upstream() -> Response:
    return operator_page(Permission.MANAGE_PARTIES, lambda op: page("console_upstream_new.html", operator=op))


@bp.post("/preview")
def preview() -> Response:
    """Validate the upload and show it with its diff; nothing is written."""
    kind = _kind(request.form.get("kind", ""))
    document, settings = _document(), _settings() if request.form.get("kind") == "saml" else {}

    def view(op: console.Operator) -> Response:
        if kind is None or not document:
            return _error(400, "Choose the kind of app and give its metadata or registration.")
        j = journeys()
        shown = app_admin.preview(j, kind, document, settings, permissions_of(op.roles))
        handle = None
        if not shown.problems:
            handle = app_admin.keep_preview(j, browser(), ConsoleAppPreview(
                op.account_id, kind.value, document.decode("utf-8", "replace"), json.dumps(settings)))
        return page("console_app_preview.html", operator=op, preview=shown, handle=handle)
    return operator_page(Permission.MANAGE_PARTIES, view)


@bp.post("/apply/<handle>")
def apply(handle: str) -> Response:
    """Register the previewed document (a recent sign-in needed); the page names what changed."""
    def view(op: console.Operator) -> Response:
        j = journeys()
        if not console.fresh(j, op):
            return page("console_sign_in.html", then=url_for("console_apps.apps"), reauth=True)
        record = app_admin.take_preview(j, browser(), op.account_id, handle)
        if record is None or (kind := _kind(record.kind)) is None:
            return _error(400, "This preview has expired or was already applied. Upload the metadata again.")
        try:
            applied = app_admin.apply(j, op.by, kind, record.document.encode(), json.loads(record.settings),
                                      permissions_of(op.roles))
        except RegistrationRefused as exc:
            return page("console_app_preview.html", 409, operator=op, preview=None, handle=None,
                         refused=exc.problems)
        return page("console_app_applied.html", operator=op, applied=applied)
    return operator_page(Permission.MANAGE_PARTIES, view)


@bp.post("/change")
def change() -> Response:
    """Switch a SAML app off or on, or remove an app (``action``), by the list's forms."""
    kind, party_id = _kind(request.form.get("kind", "")), request.form.get("party_id", "")[:1024]
    action = request.form.get("action", "")

    def view(op: console.Operator) -> Response:
        j = journeys()
        if kind is None or not party_id or action not in ("enable", "disable", "remove"):
            return _error(400, "Choose an app and what to do with it.")
        if not console.fresh(j, op):
            return page("console_sign_in.html", then=url_for("console_apps.apps"), reauth=True)
        try:
            if action == "remove":
                app_admin.remove(j, op.by, kind, party_id)
            else:
                app_admin.set_enabled(j, op.by, kind, party_id, action == "enable")
        except RegistrationRefused as exc:
            return _error(409, "; ".join(exc.problems))
        return Response(status=303, headers={"Location": url_for("console_apps.apps")})
    return operator_page(Permission.MANAGE_PARTIES, view)
