"""The step-up page's answer, as HTTP (the journey: ``broker.journeys.step_up``)."""

from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from broker.journeys import step_up, step_up_enrol
from broker.web.renderer import run

bp = Blueprint("step_up", __name__)


@bp.post("/step-up/<handle>")
def verify(handle: str) -> Response:
    """The code the person entered for their second factor, or their passkey's assertion."""
    code = request.form.get("code", "")[:64]
    credential = request.form.get("credential", "")[:16384]  # a WebAuthn assertion, as JSON
    return run(lambda j, b: step_up.verify(j, b, handle, code, credential))


@bp.post("/step-up/<handle>/send")
def send_code(handle: str) -> Response:
    """Send a code to one of the person's e-mail code factors (the form names it)."""
    factor = request.form.get("factor", "")[:64]
    return run(lambda j, b: step_up.send_code(j, b, handle, factor))


@bp.post("/step-up/<handle>/enrol")
def enrol(handle: str) -> Response:
    """The first code of the authenticator app the person is adding at the step-up."""
    code = request.form.get("code", "")[:64]
    return run(lambda j, b: step_up_enrol.confirm(j, b, handle, code))


@bp.post("/step-up/<handle>/continue")
def resume(handle: str) -> Response:
    """The recovery codes were seen: on to the app."""
    return run(lambda j, b: step_up_enrol.resume(j, b, handle))
