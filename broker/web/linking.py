"""Linking and unlinking sign-in methods from the citizen's portal, as HTTP (the journey and its rules:
``broker.journeys.portal_links``; the upstream's answer comes back through ``broker.web.login.oidc_callback``
or ``broker.web.saml_sp.acs``).
"""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, request, url_for
from werkzeug.wrappers import Response

from broker.journeys import portal_links
from broker.web.renderer import browser, html, journeys, render, run

bp = Blueprint("linking", __name__, url_prefix="/account")


@bp.get("/link")
def choose() -> str:
    """The sign-in methods the citizen could link (each a CSRF-protected form to ``start``)."""
    j = journeys()
    sso = portal_links.signed_in(j, browser())
    if sso is None:
        return html("link_choose.html", signed_in=False, upstreams=[])
    return html("link_choose.html", signed_in=True, upstreams=portal_links.linkable_upstreams(j, sso.account_id))


@bp.post("/link/<upstream>")
def start(upstream: str) -> Response:
    """Issue a link proof for ``upstream`` and send the browser there (the form carries only the CSRF token)."""
    return run(lambda j, b: portal_links.start(j, b, upstream))


@bp.post("/link/confirm/<handle>")
def confirm(handle: str) -> Response:
    """The citizen confirmed: the proof must still hold (same SSO session, account unchanged, not expired)."""
    return run(lambda j, b: portal_links.confirm(j, b, handle))


@bp.post("/link/cancel/<handle>")
def cancel(handle: str) -> Response:
    """The citizen declined: nothing is linked; back to their sign-in methods."""
    portal_links.cancel(journeys(), browser(), handle)
    return redirect(url_for("portal.identities") if "portal.identities" in current_app.view_functions
                    else url_for("linking.choose"), code=303)


@bp.post("/identities/unlink")
def unlink() -> Response:
    """Remove one of the account's sign-in methods (hidden fields ``issuer`` and ``subject``); never the last."""
    done = portal_links.unlink(journeys(), browser(), request.form.get("issuer", ""), request.form.get("subject", ""))
    if isinstance(done, portal_links.Unlinked):
        return redirect_or_page(done.upstream)
    return render(done)


def redirect_or_page(display: str) -> Response:
    """After an unlink: the portal's identities page when it exists, else a short confirmation page."""
    if "portal.identities" in current_app.view_functions:
        return redirect(url_for("portal.identities"), code=303)
    return Response(html("link_unlinked.html", upstream=display), mimetype="text/html")
