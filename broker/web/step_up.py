"""The step-up page's answer, as HTTP (the journey: ``broker.journeys.step_up``)."""

from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from broker.journeys import step_up
from broker.web.renderer import run

bp = Blueprint("step_up", __name__)


@bp.post("/step-up/<handle>")
def verify(handle: str) -> Response:
    """The code the person entered for their second factor, or their passkey's assertion."""
    code = request.form.get("code", "")[:64]
    credential = request.form.get("credential", "")[:16384]  # a WebAuthn assertion, as JSON
    return run(lambda j, b: step_up.verify(j, b, handle, code, credential))
