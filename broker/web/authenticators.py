"""The portal's "Sign-in security" page as HTTP (issue 17); what it shows and does is
``broker.journeys.authenticators``. Every form carries the CSRF token (``app._csrf``); the enrolment's QR code is
drawn here, server-side, as inline SVG (``qr_svg``: the journeys may not import ``segno``)."""

from __future__ import annotations

import segno
from flask import Blueprint, request, url_for
from markupsafe import Markup, escape
from werkzeug.wrappers import Response

from broker.journeys import authenticators, email_enrolment, passkeys, step_up
from broker.web.renderer import run

bp = Blueprint("authenticators", __name__, url_prefix="/account/security")


def qr_svg(uri: str, title: str = "QR code for your authenticator app") -> Markup:
    """``uri`` as an inline SVG QR code (error correction M), with a title and an accessible name."""
    svg = segno.make(uri, error="m", micro=False).svg_inline(scale=4, border=4, title=title, svgclass="qr",
                                                            dark="#000", light="#fff")
    label = escape(title)
    return Markup(f'<figure class="qr" role="img" aria-label="{label}">{svg}</figure>')  # noqa: S704 - segno's own SVG


@bp.get("/")
def page() -> Response:
    return run(authenticators.page)


@bp.post("/start")
def start() -> Response:
    name = request.form.get("name", "")[:200]
    return run(lambda j, b: authenticators.start_totp(j, b, name))


@bp.post("/confirm/<handle>")
def confirm(handle: str) -> Response:
    code = request.form.get("code", "")[:64]
    return run(lambda j, b: authenticators.confirm_totp(j, b, handle, code))


@bp.post("/recovery-codes")
def recovery_codes() -> Response:
    return run(authenticators.new_recovery_codes)


@bp.post("/remove/<authenticator_id>")
def remove(authenticator_id: str) -> Response:
    chosen = authenticator_id[:64]
    return run(lambda j, b: authenticators.remove(j, b, chosen))


@bp.post("/confirm-it-is-you")
def confirm_it_is_you() -> Response:
    """Give a second factor for the SSO session (``broker.journeys.step_up.reconfirm``), then back here."""
    back = url_for("authenticators.page")
    return run(lambda j, b: step_up.reconfirm(j, b, back))

@bp.post("/passkey/start")
def passkey_start() -> Response:
    """Start adding a passkey (the form carries its name)."""
    name = request.form.get("name", "")[:200]
    return run(lambda j, b: passkeys.start(j, b, name))


@bp.post("/passkey/confirm/<handle>")
def passkey_confirm(handle: str) -> Response:
    """The browser's answer to the registration ceremony (WebAuthn JSON, posted by passkey.js)."""
    credential = request.form.get("credential", "")[:65536]
    return run(lambda j, b: passkeys.confirm(j, b, handle, credential))


@bp.post("/email/start")
def email_start() -> Response:
    """Send a code to the address given, to add it for e-mail codes."""
    address = request.form.get("address", "")[:300]
    name = request.form.get("name", "")[:200]
    return run(lambda j, b: email_enrolment.start(j, b, name, address))


@bp.post("/email/confirm/<handle>")
def email_confirm(handle: str) -> Response:
    code = request.form.get("code", "")[:64]
    return run(lambda j, b: email_enrolment.confirm(j, b, handle, code))
