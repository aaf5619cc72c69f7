"""The operator console's settings page of a SAML app (issue 19; README "Operator console", "Registering parties"):
what ``broker sp set`` changes in ``metadata/saml-sp/<name>.toml``, through ``broker.journeys.app_admin``.

The form shows the settings as written; a field left empty removes that setting (the metadata or the default
decides again). "Check and preview" validates the result with the app's metadata exactly as the registry will
load them and shows the diff; problems come back on the form, each linked to its field. "Apply" writes what was
previewed, kept server-side between the steps (``ConsoleAppPreview`` of kind ``SETTINGS_KIND``: this browser,
this operator, once), after a sign-in at most ``[console] reauth_minutes`` old, as registering an app does.
Nested in ``console_apps.bp``: its paths are ``/console/apps/settings/...``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Blueprint, request, url_for
from werkzeug.wrappers import Response

from broker.core.console_records import ConsoleAppPreview
from broker.core.operators import Permission
from broker.core.party_admin import SAML_SETTINGS, AppKind, RegistrationRefused
from broker.core.texts import N_
from broker.journeys import app_admin, console
from broker.web.console import operator_page, page
from broker.web.http.journey_context import support_reference
from broker.web.renderer import browser, journeys

bp = Blueprint("settings", __name__, url_prefix="/settings")
#: the ``kind`` of a settings preview's record (an app registration's is an ``AppKind``)
SETTINGS_KIND = "saml-settings"
#: the settings entered one per line
LIST_SETTINGS = ("allowed_upstreams", "receive", "required")
#: the form's labels, by setting
LABELS = {
    "display_name": N_("Name citizens see"), "logo_uri": N_("Logo (an https URL or a data:image URI)"),
    "policy_uri": N_("Privacy policy (https)"), "allowed_upstreams": N_("Allowed sign-in methods (upstream names or "
    "IdP entity IDs, one per line; empty: every one)"), "default_upstream": N_("Default sign-in method (one of the "
    "allowed ones)"), "required_acr": N_("Minimum assurance (acr)"), "receive": N_("Claims it receives (one per "
    "line; empty: its metadata's requested attributes)"), "required": N_("Claims the citizen cannot decline (one "
    "per line)"),
}


def _party_id() -> str:
    return (request.values.get("party_id") or "").strip()[:1024]


def _shown(settings: Mapping[str, object]) -> dict[str, str]:
    """The settings as the form's fields hold them: lists one item per line."""
    shown = {}
    for key in SAML_SETTINGS:
        value = settings.get(key)
        if isinstance(value, list | tuple):
            shown[key] = "\n".join(str(item) for item in value)
        elif value is not None:
            shown[key] = str(value)
    return shown


def _submitted() -> tuple[dict[str, str], dict[str, object], list[str]]:
    """The form as typed, the settings to set, and those to remove (the fields left empty)."""
    typed = {key: request.form.get(key, "").strip()[:100_000] for key in SAML_SETTINGS}
    settings: dict[str, object] = {}
    for key, text in typed.items():
        if text and key in LIST_SETTINGS:
            settings[key] = [line.strip() for line in text.splitlines() if line.strip()][:100]
        elif text:
            settings[key] = text
    return typed, settings, [key for key, text in typed.items() if not text]


def field_errors(problems: Sequence[str]) -> list[tuple[str | None, str]]:
    """Each problem, one per line, with the field it names (None: the app as a whole), for links to the field."""
    found: list[tuple[str | None, str]] = []
    for problem in problems:
        for part in problem.removeprefix("settings not valid: ").split("; "):
            key = next((k for k in SAML_SETTINGS if part.startswith((f"{k} ", f"{k}:"))), None)
            found.append((key, part))
    return found


def _form(op: console.Operator, party_id: str, typed: Mapping[str, str], status: int = 200,
          problems: Sequence[str] = (), changed: bool = False) -> Response:
    errors = field_errors(problems)
    by_field: dict[str, list[str]] = {}
    for key, text in errors:
        if key is not None:
            by_field.setdefault(key, []).append(text)
    return page("console_app_settings.html", status, operator=op, party_id=party_id, values=typed, labels=LABELS,
                lists=LIST_SETTINGS, errors=errors, by_field=by_field, changed=changed)


def _error(status: int, message: str) -> Response:
    return page("error.html", status, message=message, reference=support_reference())


@bp.get("/")
def form() -> Response:
    """The settings of the app ``?party_id=``, as written, in a form."""
    party_id = _party_id()

    def view(op: console.Operator) -> Response:
        try:
            current = app_admin.current_settings(journeys(), AppKind.SAML, party_id)
        except RegistrationRefused as exc:
            return _error(404, "; ".join(exc.problems))
        return _form(op, party_id, _shown(current), changed=request.args.get("changed") == "1")
    return operator_page(Permission.MANAGE_PARTIES, view)


@bp.post("/preview")
def preview() -> Response:
    """Validate the changed settings with the app's metadata and show the diff; nothing is written."""
    party_id = _party_id()
    typed, settings, clear = _submitted()

    def view(op: console.Operator) -> Response:
        j = journeys()
        shown = app_admin.preview_settings(j, AppKind.SAML, party_id, settings, clear)
        if shown.problems:
            return _form(op, party_id, typed, 400, shown.problems)
        handle = app_admin.keep_preview(j, browser(), ConsoleAppPreview(
            op.account_id, SETTINGS_KIND, party_id, json.dumps({"settings": settings, "clear": clear})))
        return page("console_app_settings_preview.html", operator=op, preview=shown, handle=handle,
                    party_id=party_id)
    return operator_page(Permission.MANAGE_PARTIES, view)


@bp.post("/apply/<handle>")
def apply(handle: str) -> Response:
    """Write the previewed settings (a recent sign-in needed), then back to the form, which says so."""
    def view(op: console.Operator) -> Response:
        j = journeys()
        if not console.fresh(j, op):
            return page("console_sign_in.html", then=url_for("console_apps.apps"), reauth=True)
        record = app_admin.take_preview(j, browser(), op.account_id, handle)
        if record is None or record.kind != SETTINGS_KIND:
            return _error(400, "This preview has expired or was already applied. Change the settings again.")
        asked: dict[str, Any] = json.loads(record.settings)
        try:
            app_admin.apply_settings(j, op.by, AppKind.SAML, record.document, asked["settings"], asked["clear"])
        except RegistrationRefused as exc:
            return page("console_app_settings_preview.html", 409, operator=op, preview=None, handle=None,
                        party_id=record.document, refused=exc.problems)
        target = url_for("console_apps.settings.form", party_id=record.document, changed="1")
        return Response(status=303, headers={"Location": target})
    return operator_page(Permission.MANAGE_PARTIES, view)
