"""A link offer's pages as HTTP (the journey and its four rules: ``broker.journeys.link_offer``)."""

from __future__ import annotations

from flask import Blueprint
from werkzeug.wrappers import Response

from broker.journeys import link_offer
from broker.web.renderer import run

bp = Blueprint("link_offer", __name__)


@bp.post("/link-offer/<handle>/separate")
def separate(handle: str) -> Response:
    """The person wants a separate account: the first sign-in completes as if nothing matched."""
    return run(lambda j, b: link_offer.separate(j, b, handle))


@bp.post("/link-offer/<handle>/prove/<name>")
def prove(handle: str, name: str) -> Response:
    """Go to the previous provider, which must sign the person in again."""
    return run(lambda j, b: link_offer.prove(j, b, handle, name))


@bp.post("/link-offer/<handle>/link")
def confirm(handle: str) -> Response:
    """The person confirmed after the proof: link, and the login continues."""
    return run(lambda j, b: link_offer.confirm(j, b, handle))


@bp.post("/link-offer/<handle>/keep-separate")
def keep_separate(handle: str) -> Response:
    """After the proof, the person keeps the two apart."""
    return run(lambda j, b: link_offer.keep_separate(j, b, handle))
