"""The operator console's federations (issue 19; README "Operator console", "SAML identity providers and
federations"): every IdP metadata source (a file of ``metadata/saml-idp`` or a feed of ``metadata/federations``)
with its location, entity count, validity, last refresh, last error and next refresh; a source's entities a page
at a time, searchable by name; and "Refresh now" (``broker.journeys.federation_admin``).

Looking needs ``view-parties``; "Refresh now" ``manage-parties``, a POST with the console's CSRF token, audited
with the operator. The refresh is the background's own, waited for a bounded time: one still running after that
is said so, and the page shows its outcome when reloaded.
"""

from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from broker.core.operators import Permission
from broker.journeys import console, federation_admin
from broker.web import console_sources
from broker.web.console import operator_page, page
from broker.web.http.journey_context import support_reference
from broker.web.renderer import journeys

bp = Blueprint("console_federations", __name__, url_prefix="/console/federations")
bp.register_blueprint(console_sources.bp)  # adding and removing sources


def _missing() -> Response:
    return page("error.html", 404, message="There is no such metadata source.", reference=support_reference())


def _listing(op: console.Operator, status: int = 200, **notice: object) -> Response:
    j = journeys()
    try:
        found, problems = federation_admin.sources(j), federation_admin.problems(j)
    except federation_admin.Unavailable:
        found, problems = (), ()
    return page("console_federations.html", status, operator=op, sources=found, problems=problems, **notice)


@bp.get("/")
def sources() -> Response:
    return operator_page(Permission.VIEW_PARTIES, _listing)


@bp.get("/entities")
def entities() -> Response:
    """``?source=`` a source's entities, ``&q=`` only those whose name (or entity id) has every word, ``&page=``."""
    name = request.args.get("source", "")[:200]
    query = request.args.get("q", "")[:200]
    number = request.args.get("page", "0")
    page_number = int(number) if number.isdigit() and len(number) < 5 else 0

    def view(op: console.Operator) -> Response:
        try:
            shown = federation_admin.entities(journeys(), name, query, page_number)
        except (federation_admin.UnknownSource, federation_admin.Unavailable):
            return _missing()
        return page("console_federation.html", operator=op, shown=shown)
    return operator_page(Permission.VIEW_PARTIES, view)


@bp.post("/refresh")
def refresh() -> Response:
    """Refresh one source now (``name``), then the list with how it went."""
    name = request.form.get("name", "")[:200]

    def view(op: console.Operator) -> Response:
        try:
            result = federation_admin.refresh(journeys(), name, op.by)
        except (federation_admin.UnknownSource, federation_admin.Unavailable):
            return _missing()
        return _listing(op, refreshed=result)
    return operator_page(Permission.MANAGE_PARTIES, view)
