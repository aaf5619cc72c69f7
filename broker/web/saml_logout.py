"""SAML Single Logout at the broker's IdP (SAML 2.0 Profiles §4.4), as HTTP: the SingleLogoutService endpoints
(HTTP-Redirect and HTTP-POST) and the pages of a logout in progress. The journey, its rules and its answers:
``broker.journeys.logout``."""

from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from broker.core import errors
from broker.core.logout_ports import POST, REDIRECT, IncomingMessage
from broker.journeys import logout
from broker.saml import redirect_signature
from broker.web.renderer import browser, html, journeys, run

bp = Blueprint("saml_logout", __name__, url_prefix="/saml2/idp")


@bp.get("/slo/redirect")
def slo_redirect() -> Response:
    """Bindings §3.4: a LogoutRequest from an SP, or a participant's LogoutResponse, in the query."""
    try:
        params = redirect_signature.decoded_params(request.query_string)
    except redirect_signature.RedirectSignatureError as exc:
        raise errors.InvalidRequest(detail=f"ambiguous query: {exc}") from exc
    def message(value: str) -> IncomingMessage:
        return IncomingMessage(REDIRECT, value, params.get("RelayState"), params.get("SigAlg"),
                               params.get("Signature"), request.query_string)

    if params.get("SAMLRequest") and "SAMLResponse" not in params:
        return run(lambda j, b: logout.app_asked(j, b, message(params["SAMLRequest"])))
    if params.get("SAMLResponse") and "SAMLRequest" not in params:
        return run(lambda j, b: logout.app_answered(j, b, message(params["SAMLResponse"])))
    raise errors.InvalidRequest(detail="SLO: exactly one of SAMLRequest and SAMLResponse expected")


@bp.post("/slo/post")
def slo_post() -> Response:
    """Bindings §3.5: the same, in a form. CSRF-exempt (app._csrf): cross-site by design, authenticated by the
    message's signature (a request) or by the chain handle bound to this browser and the signature (a response)."""
    form = request.form
    relay_state = form.get("RelayState")
    if form.get("SAMLRequest") and "SAMLResponse" not in form:
        asked = IncomingMessage(POST, form["SAMLRequest"], relay_state)
        return run(lambda j, b: logout.app_asked(j, b, asked))
    if form.get("SAMLResponse") and "SAMLRequest" not in form:
        answered = IncomingMessage(POST, form["SAMLResponse"], relay_state)
        return run(lambda j, b: logout.app_answered(j, b, answered))
    raise errors.InvalidRequest(detail="SLO: exactly one of SAMLRequest and SAMLResponse expected")


@bp.get("/slo/resume/<handle>")
def resume(handle: str) -> Response:
    """Where the upstream IdP's answer sends the browser back to: the chain finishes."""
    return run(lambda j, b: logout.resume(j, b, handle))


@bp.route("/slo/continue", methods=["GET", "POST"])
def go_on() -> Response | str:
    """For a person whose sign-out stopped at an app that never answered: the page offers to go on (GET), and the
    CSRF-protected POST skips that app (the initiator then learns PartialLogout)."""
    if request.method == "GET":
        return html("logout_progress.html", waiting=logout.waiting(journeys(), browser()))
    return run(logout.skip_waiting)
