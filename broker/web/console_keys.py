"""The operator console's signing keys (issue 19; README "Operator console", ``broker keys rotate``): which keys
sign and are published (key id, algorithm, made, state, published until), where the rotation stands and which
step comes next, and that step's button (``broker.journeys.key_admin``, the CLI's own rotation).

Looking needs ``view-parties``; a step ``manage-keys``, a POST with the console's CSRF token and a sign-in at most
``[console] reauth_minutes`` old (else the sign-in page, which comes back here); audited with the operator and
the active key ids before and after. Instances read the keys at start-up, so the page says to restart them all.
"""

from __future__ import annotations

from flask import Blueprint, request, url_for
from werkzeug.wrappers import Response

from broker.core.operators import Permission
from broker.core.signing_keys import Rotated, Step
from broker.journeys import console, key_admin
from broker.web.console import operator_page, page
from broker.web.http.journey_context import support_reference
from broker.web.renderer import journeys

bp = Blueprint("console_keys", __name__, url_prefix="/console/keys")


def _page(op: console.Operator, status: int = 200, done: Rotated | None = None, refused: str | None = None) -> Response:
    try:
        report = key_admin.report(journeys())
    except key_admin.Unavailable:
        return page("error.html", 404, message="This broker has no signing keys to show.",
                    reference=support_reference())
    return page("console_keys.html", status, operator=op, report=report, steps=list(Step), done=done,
                refused=refused, restart=key_admin.RESTART_NEEDED)


@bp.get("/")
def keys() -> Response:
    return operator_page(Permission.VIEW_PARTIES, _page)


@bp.post("/rotate")
def rotate() -> Response:
    """Run one rotation step (``step``: stage, switch or retire; ``force`` skips its waiting period)."""
    text, force = request.form.get("step", ""), request.form.get("force") == "yes"

    def view(op: console.Operator) -> Response:
        j = journeys()
        if text not in {s.value for s in Step}:
            return page("error.html", 400, message="Choose a rotation step.", reference=support_reference())
        if not console.fresh(j, op):
            return page("console_sign_in.html", then=url_for("console_keys.keys"), reauth=True)
        try:
            done = key_admin.rotate(j, Step(text), op.by, force=force)
        except key_admin.RotationRefused as exc:
            return _page(op, 409, refused=str(exc))
        return _page(op, done=done)
    return operator_page(Permission.MANAGE_KEYS, view)
