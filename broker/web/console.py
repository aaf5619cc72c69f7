"""The operator console's routes (issue 19); who is there and what they may do is ``broker.journeys.console``.

The console session's handle travels in a cookie of its own (``COOKIE``: HttpOnly, ``SameSite=Lax``, Secure over
https), apart from the browser's session cookie: ending it leaves the operator signed in to apps, and ending the
SSO session ends it. Its pages are server-rendered and work without JavaScript; every form carries a CSRF token
except the sign-in button, which opens no session and is checked for its origin only (as the portal's).
A request without a console session gets the sign-in page (200, so a bookmark leads somewhere useful); one its
roles do not allow gets 403 and an audit record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from flask import Blueprint, current_app, request, url_for
from werkzeug.wrappers import Response

from broker.core import errors
from broker.core.audit_chain import ChainedRecord
from broker.core.operators import Permission
from broker.journeys import account_status, citizen_lookup, console
from broker.web.http.journey_context import support_reference
from broker.web.renderer import browser, html, journeys, render
from broker.web.services import services

log = logging.getLogger("broker.console")
bp = Blueprint("console", __name__, url_prefix="/console")
COOKIE = "broker_console"
AUDIT_PAGE = 50


def _handle() -> str | None:
    value = request.cookies.get(COOKIE, "")
    return value if 0 < len(value) <= 128 else None


def page(template: str, status: int = 200, **data: object) -> Response:
    return Response(html(template, Permission=Permission, **data), status=status, mimetype="text/html")


def _sign_in_page() -> Response:
    return page("console_sign_in.html", then=request.full_path.rstrip("?") if request.method == "GET" else "")


def _refused(exc: errors.NotAnOperator) -> Response:
    reference = support_reference()
    log.warning("ref=%s console refused: %s", reference, exc.detail)
    return page("error.html", 403, message=exc.message, reference=reference)


def operator_page(permission: Permission | None, view: Callable[[console.Operator], Response]) -> Response:
    """``view`` for the operator of this request when ``permission`` (None: any role) allows it; else the sign-in
    page or 403."""
    try:
        operator = console.current(journeys(), browser(), _handle(), permission)
    except console.SignInNeeded:
        return _sign_in_page()
    except errors.NotAnOperator as exc:
        return _refused(exc)
    return view(operator)


@bp.get("/")
def home() -> Response:
    return operator_page(None, lambda op: page("console_home.html", operator=op,
                                                permissions=sorted(p.value for p in Permission if op.may(p))))


@bp.post("/sign-in")
def sign_in() -> Response:
    """Sign in to the console: a fresh login through the broker at the console's level (``console.sign_in``)."""
    then = request.form.get("then", "/console/")[:512]
    return render(console.sign_in(journeys(), browser(), then, lambda h: url_for("console.signed_in", h=h)))


@bp.get("/signed-in")
def signed_in() -> Response:
    """The console sign-in's login came back: open the console session, then the page asked for."""
    try:
        handle, then = console.signed_in(journeys(), browser(), request.args.get("h", "")[:128])
    except console.SignInNeeded:
        return _sign_in_page()
    except errors.NotAnOperator as exc:
        return _refused(exc)
    response = Response(status=303, headers={"Location": then})
    response.set_cookie(COOKIE, handle, httponly=True, samesite="Lax",
                        secure=current_app.config["BROKER_HTTPS"], path="/")
    return response


@bp.post("/sign-out")
def sign_out() -> Response:
    console.sign_out(journeys(), _handle())
    response = page("console_signed_out.html")
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Lax",
                           secure=current_app.config["BROKER_HTTPS"])
    return response


@bp.get("/operators")
def operators() -> Response:
    def view(op: console.Operator) -> Response:
        return page("console_operators.html", operator=op, grants=console.grants(journeys()).listing())
    return operator_page(Permission.MANAGE_OPERATORS, view)


@bp.get("/audit")
def audit() -> Response:
    """The newest audit records (only an account's with ``?account=``), and whether the chain is intact."""
    account = request.args.get("account", "").strip()[:36] or None

    def view(op: console.Operator) -> Response:
        records: list[ChainedRecord] = list(services().audit.events(account_id=account, limit=AUDIT_PAGE))
        return page("console_audit.html", operator=op, records=records, account=account or "", check=None)
    return operator_page(Permission.VIEW_AUDIT, view)


@bp.post("/audit/verify")
def verify_audit() -> Response:
    """Check the whole hash chain (``broker audit verify``): it reads every record, so only when asked."""
    def view(op: console.Operator) -> Response:
        svc = services()
        records: list[ChainedRecord] = list(svc.audit.events(limit=AUDIT_PAGE))
        return page("console_audit.html", operator=op, records=records, account="", check=svc.audit.check())
    return operator_page(Permission.VIEW_AUDIT, view)


# -- the help desk's look-up (``broker.journeys.citizen_lookup``) ------------------------------------------------
LOOKUPS = citizen_lookup.WAYS


@bp.get("/citizens")
def citizens() -> Response:
    """Find one citizen by one of ``LOOKUPS``; never a list of all citizens."""
    how = request.args.get("how", "")
    value = request.args.get("value", "").strip()[:320]
    upstream = request.args.get("upstream", "").strip()[:255]
    app = request.args.get("app", "").strip()[:1024]

    def view(op: console.Operator) -> Response:
        j = journeys()
        found = citizen_lookup.find(j, op.by, how, value, upstream, app) if how in LOOKUPS and value else None
        snapshot = services().registry.snapshot
        apps = sorted([*snapshot.saml.sps, *snapshot.oidc_clients])  # suggestions; a dynamic client is typed
        return page("console_citizens.html", operator=op, found=found, how=how, value=value,
                    upstream=upstream, upstreams=sorted(snapshot.upstreams), app=app, apps=apps)
    return operator_page(Permission.LOOK_UP_CITIZENS, view)


@bp.get("/citizens/<account_id>")
def citizen(account_id: str) -> Response:
    return operator_page(Permission.LOOK_UP_CITIZENS, lambda op: _citizen_page(op, account_id[:36], None))


@bp.post("/citizens/<account_id>/reveal")
def reveal(account_id: str) -> Response:
    """Show the account's claim values: ``reveal-claims``, and a sign-in at most ``[console] reauth_minutes`` old
    (else the console's sign-in page, which comes back to this citizen)."""
    def view(op: console.Operator) -> Response:
        if not console.fresh(journeys(), op):
            return page("console_sign_in.html", then=url_for("console.citizen", account_id=account_id),
                         reauth=True)
        return _citizen_page(op, account_id[:36], citizen_lookup.reveal(journeys(), op.by, account_id[:36]))
    return operator_page(Permission.REVEAL_CLAIMS, view)


def _citizen_page(op: console.Operator, account_id: str, claims: Mapping[str, object] | None) -> Response:
    j = journeys()
    found = citizen_lookup.by_account(j, op.by, account_id)
    shown = citizen_lookup.summary(j, found.accounts[0]) if found.accounts else None
    if shown is None:
        return page("error.html", 404, message="There is no such account.", reference=support_reference())
    return page("console_citizen.html", operator=op, citizen=shown, claims=claims)


@bp.post("/citizens/<account_id>/status")
def citizen_status(account_id: str) -> Response:
    """Disable or enable the account (``broker.journeys.account_status``): ``manage-citizens`` and a recent
    sign-in; the operator's account id goes to the audit record."""
    action = request.form.get("action", "")
    reason = request.form.get("reason", "").strip()[:255] or None

    def view(op: console.Operator) -> Response:
        j = journeys()
        if not console.fresh(j, op):
            return page("console_sign_in.html", then=url_for("console.citizen", account_id=account_id),
                         reauth=True)
        try:
            if action == "disable":
                account_status.disable(j, account_id[:36], reason, op.by)
            elif action == "enable":
                account_status.enable(j, account_id[:36], op.by)
            else:
                return page("error.html", 400, message="Choose to disable or enable the account.",
                             reference=support_reference())
        except account_status.UnknownAccount:
            return page("error.html", 404, message="There is no such account.", reference=support_reference())
        except ValueError as exc:
            return page("error.html", 400, message=str(exc), reference=support_reference())
        return Response(status=303, headers={"Location": url_for("console.citizen", account_id=account_id[:36])})
    return operator_page(Permission.MANAGE_CITIZENS, view)
