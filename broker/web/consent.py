"""The consent page's answer (the journey: ``broker.journeys.consent``): allow with the optional claims ticked,
or decline, which the app hears in its protocol (SAML RequestDenied, OIDC access_denied)."""

from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from broker.journeys import consent
from broker.web.renderer import run

bp = Blueprint("consent", __name__)


@bp.post("/consent/<handle>")
def decide(handle: str) -> Response:
    """The person's answer on the consent page."""
    allow = request.form.get("decision") == "allow"
    ticked = frozenset(request.form.getlist("claim"))
    return run(lambda j, b: consent.decide(j, b, handle, allow, ticked))
