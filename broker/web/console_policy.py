"""The operator console's release policy (issue 19; README "Operator console", "What each app receives: release
policy and consent"): the version in force, the default rule and each app's, the consent-exempt apps, what
``broker check`` reports about the file and the consent answers given under each version
(``broker.journeys.policy_admin``; ``view-parties``); and changing it (``broker.journeys.policy_edit``;
``manage-parties``).

Changing is two steps, as registering an app: the text (typed in the form, prefilled with the file's, or uploaded)
is checked exactly as the registry will load it and shown with the diff against the policy in force and what it
means for citizens (a preview, nothing written); "Apply" writes *that* text, kept server-side between the steps
(``ConsoleAppPreview`` of kind ``release-policy``: this browser, this operator, once), after a sign-in at most
``[console] reauth_minutes`` old. The past versions are listed, each shown on a page of its own, and "Restore" puts
one's text in the form, to be previewed and applied like any other.
"""

from __future__ import annotations

from flask import Blueprint, request, url_for
from werkzeug.wrappers import Response

from broker.core.console_records import ConsoleAppPreview
from broker.core.operators import Permission
from broker.core.policy_report import MAX_POLICY, PolicyRefused
from broker.journeys import app_admin, console, policy_admin, policy_edit
from broker.web.console import operator_page, page
from broker.web.http.journey_context import support_reference
from broker.web.renderer import browser, journeys

bp = Blueprint("console_policy", __name__, url_prefix="/console/policy")


def _document() -> bytes:
    upload = request.files.get("file")
    data = upload.read(MAX_POLICY + 1) if upload is not None and upload.filename else b""
    return data or request.form.get("text", "").replace("\r\n", "\n").encode()


def _error(status: int, message: str) -> Response:
    return page("error.html", status, message=message, reference=support_reference())


@bp.get("/")
def policy() -> Response:
    """The policy in force, its past versions and, for ``manage-parties``, the form to change it (``?restore=``: a
    past version's text in it)."""
    restore = request.args.get("restore", "")[:128]

    def view(op: console.Operator) -> Response:
        j = journeys()
        text = None
        if op.may(Permission.MANAGE_PARTIES):
            text = policy_edit.past(j, restore) if restore else None
            if restore and text is None:
                return _error(404, "There is no such past version of the policy.")
            text = text if text is not None else policy_edit.current_text(j)
        return page("console_policy.html", operator=op, policy=policy_admin.view(j), text=text, restored=restore,
                    past=policy_edit.versions(j))
    return operator_page(Permission.VIEW_PARTIES, view)


@bp.get("/versions/<name>")
def version(name: str) -> Response:
    """One past version's text."""
    def view(op: console.Operator) -> Response:
        j = journeys()
        text = policy_edit.past(j, name)
        shown = next((v for v in policy_edit.versions(j) if v.past.name == name), None)
        if text is None or shown is None:
            return _error(404, "There is no such past version of the policy.")
        return page("console_policy_version.html", operator=op, shown=shown, text=text)
    return operator_page(Permission.VIEW_PARTIES, view)


@bp.post("/preview")
def preview() -> Response:
    """Check the text and show what it changes; nothing is written."""
    document = _document()

    def view(op: console.Operator) -> Response:
        if not document.strip():
            return _error(400, "Give the policy's text, or upload its file.")
        j = journeys()
        shown = policy_edit.preview(j, document)
        text = document.decode("utf-8", "replace")
        handle = None
        if shown.changes is not None:
            handle = app_admin.keep_preview(j, browser(), ConsoleAppPreview(
                op.account_id, policy_edit.PREVIEW_KIND, text, "{}"))
        return page("console_policy_preview.html", operator=op, preview=shown, handle=handle, text=text)
    return operator_page(Permission.MANAGE_PARTIES, view)


@bp.post("/apply/<handle>")
def apply(handle: str) -> Response:
    """Write the previewed text (a recent sign-in needed); the page names what changed."""
    def view(op: console.Operator) -> Response:
        j = journeys()
        if not console.fresh(j, op):
            return page("console_sign_in.html", then=url_for("console_policy.policy"), reauth=True)
        record = app_admin.take_preview(j, browser(), op.account_id, handle[:128])
        if record is None or record.kind != policy_edit.PREVIEW_KIND:
            return _error(400, "This preview has expired or was already applied. Preview the policy again.")
        try:
            applied = policy_edit.apply(j, op.by, record.document.encode())
        except PolicyRefused as exc:
            return page("console_policy_preview.html", 409, operator=op, preview=None, handle=None,
                        text=record.document, refused=exc.problems)
        return page("console_policy_preview.html", operator=op, preview=applied.preview, handle=None,
                    text=record.document, applied=applied.written)
    return operator_page(Permission.MANAGE_PARTIES, view)
