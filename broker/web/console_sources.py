"""Adding and removing IdP metadata sources at the operator console (issue 19; README "SAML identity providers
and federations", "Operator console"; ``broker.journeys.source_admin``), below ``/console/federations/sources``:

- "Add an IdP metadata file": the XML (one IdP or an aggregate) and, optionally, the signer's certificate (PEM),
  which makes the file's signature required and checked;
- "Add a federation feed": a name, the feed's https URL, the federation's signing certificate (pinned) and the
  refresh interval.

As for apps (``console_apps``): the upload is checked exactly as the IdP directory will load it and shown with the
identity providers found, any problems and the diff against the source of that name (a preview, nothing written);
"Apply" writes *that* draft, kept server-side between the steps (this browser, this operator, once), after a sign-in
at most ``[console] reauth_minutes`` old. "Remove" is a form of the list, with the same fresh sign-in. Every form
needs ``manage-parties`` and the console's CSRF token.
"""

from __future__ import annotations

from flask import Blueprint, request, url_for
from werkzeug.wrappers import Response

from broker.core.operators import Permission
from broker.core.source_admin import MAX_SOURCE_DOCUMENT, RegistrationRefused, SourceDraft, SourceKind
from broker.journeys import console, source_admin
from broker.web.console import operator_page, page
from broker.web.http.journey_context import support_reference
from broker.web.renderer import browser, journeys

bp = Blueprint("source_files", __name__, url_prefix="/sources")


def _kind(text: str) -> SourceKind | None:
    try:
        return SourceKind(text)
    except ValueError:
        return None


def _upload(field: str, pasted: str) -> bytes | None:
    """The uploaded file ``field``, else the text pasted in ``pasted``; None when neither was given."""
    upload = request.files.get(field)
    data = upload.read(MAX_SOURCE_DOCUMENT + 1) if upload is not None and upload.filename else b""
    text = request.form.get(pasted, "")
    return data or (text.encode() if text.strip() else None)


def _draft(kind: SourceKind) -> SourceDraft:
    name = request.form.get("name", "").strip()[:64]
    if kind is SourceKind.IDP_FILE:
        return SourceDraft(kind, name, document=_upload("document", "document_text"),
                           certificate=_upload("certificate", "certificate_text"))
    interval = request.form.get("refresh_interval", "").strip()
    return SourceDraft(kind, name, certificate=_upload("certificate", "certificate_text"),
                       url=request.form.get("url", "").strip()[:2048] or None,
                       refresh_interval=int(interval) if interval.isdigit() and len(interval) < 9 else None)


def _error(status: int, message: str) -> Response:
    return page("error.html", status, message=message, reference=support_reference())


def _listing() -> str:
    return url_for("console_federations.sources")


@bp.get("/new")
def new() -> Response:
    """The form of ``?kind=`` idp-file (the default) or federation."""
    kind = _kind(request.args.get("kind", "")) or SourceKind.IDP_FILE
    return operator_page(Permission.MANAGE_PARTIES, lambda op: page("console_source_new.html", operator=op,
                                                                    kind=kind.value))


@bp.post("/preview")
def preview() -> Response:
    """Check the upload and show what the directory would load, with the diff; nothing is written."""
    kind = _kind(request.form.get("kind", ""))
    draft = _draft(kind) if kind is not None else None

    def view(op: console.Operator) -> Response:
        if draft is None:
            return _error(400, "Choose an IdP metadata file or a federation feed.")
        j = journeys()
        shown = source_admin.preview(j, draft)
        handle = None if shown.problems else source_admin.keep_preview(j, browser(), op.account_id, draft)
        return page("console_source_preview.html", 200 if not shown.problems else 422, operator=op,
                    preview=shown, handle=handle)
    return operator_page(Permission.MANAGE_PARTIES, view)


@bp.post("/apply/<handle>")
def apply(handle: str) -> Response:
    """Write the previewed source (a recent sign-in needed); the page names what changed."""
    def view(op: console.Operator) -> Response:
        j = journeys()
        if not console.fresh(j, op):
            return page("console_sign_in.html", then=_listing(), reauth=True)
        draft = source_admin.take_preview(j, browser(), op.account_id, handle[:128])
        if draft is None:
            return _error(400, "This preview has expired or was already applied. Upload the source again.")
        try:
            shown = source_admin.apply(j, op.by, draft)
        except RegistrationRefused as exc:
            return page("console_source_preview.html", 409, operator=op, preview=None, handle=None,
                        refused=exc.problems)
        return page("console_source_preview.html", operator=op, preview=shown, handle=None, applied=True)
    return operator_page(Permission.MANAGE_PARTIES, view)


@bp.post("/remove")
def remove() -> Response:
    """Remove a source (``name`` as the list shows it: ``saml-idp/<name>`` or ``federation/<name>``)."""
    folder, _, name = request.form.get("name", "")[:200].partition("/")
    kind = next((k for k in SourceKind if k.folder == folder), None)

    def view(op: console.Operator) -> Response:
        j = journeys()
        if kind is None or not name:
            return _error(400, "Choose a metadata source to remove.")
        if not console.fresh(j, op):
            return page("console_sign_in.html", then=_listing(), reauth=True)
        try:
            source_admin.remove(j, op.by, kind, name)
        except RegistrationRefused as exc:
            return _error(404, "; ".join(exc.problems))
        return Response(status=303, headers={"Location": _listing()})
    return operator_page(Permission.MANAGE_PARTIES, view)
