"""The consent page (the journey: ``broker.journeys.consent``), at its own address: a login that needs consent
comes here by a 303 (post/redirect/get), so reload and Back show the page again instead of replaying the
upstream's callback (issue 20, "Dead ends").

``show`` renders it while the login waits; once it is answered (or gone) the same address says so and links back
to the app (``broker.web.http.way_back``), never the generic error. ``decide`` takes the answer: allow with the optional
claims ticked, or decline, which first shows what declining means; ``give_up`` then sends the app its protocol's
refusal (SAML RequestDenied, OIDC access_denied).
"""

from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from broker.journeys import consent
from broker.web.http import way_back
from broker.web.renderer import browser, html, journeys, page, run

bp = Blueprint("consent", __name__)


@bp.get("/consent/<handle>")
def show(handle: str) -> Response:
    """The consent page of the waiting login, the same at every reload; after the answer, the way back."""
    back = way_back.note(handle)
    shown = consent.show(journeys(), browser(), handle)
    if shown is not None:
        return page(shown)
    finished = html("consent_finished.html", way_back=back)
    return Response(finished, mimetype="text/html", headers={"Cache-Control": "no-store"})


@bp.post("/consent/<handle>")
def decide(handle: str) -> Response:
    """The person's answer on the consent page."""
    way_back.note(handle)
    allow = request.form.get("decision") == "allow"
    ticked = frozenset(request.form.getlist("claim"))
    return run(lambda j, b: consent.decide(j, b, handle, allow, ticked))


@bp.post("/consent/<handle>/return")
def give_up(handle: str) -> Response:
    """"Return to the app" after declining: the app hears the refusal in its protocol."""
    way_back.note(handle)
    return run(lambda j, b: consent.give_up(j, b, handle))
