"""``POST /upstream/<name>/backchannel-logout``: the upstream OpenID provider ``name`` tells the broker that a person
signed out there (OpenID Connect Back-Channel Logout 1.0 §2.5, the broker as relying party), as HTTP. What it ends:
``broker.journeys.upstream_backchannel``.

The provider calls this directly, not a browser: no cookie is read or set, the form's ``logout_token`` is the only
input (a JWT its signature authenticates), and the answer is §2.8's: 200 with ``Cache-Control: no-store`` when the
logout is done, 400 with OAuth-style JSON (``invalid_request``) when the token is refused or the logout failed. The
reason stays in the log; the caller learns no more than that.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request

from broker.core import errors
from broker.core.audit import AuditKind
from broker.journeys import upstream_backchannel
from broker.web.http import audit
from broker.web.renderer import journeys

log = logging.getLogger("broker.errors")
bp = Blueprint("upstream_backchannel", __name__)
FORM = "application/x-www-form-urlencoded"


@bp.post("/upstream/<name>/backchannel-logout")
def logout(name: str) -> Response:
    tokens = request.form.getlist("logout_token") if request.mimetype == FORM else []
    if len(tokens) != 1 or not tokens[0]:
        return _refused(name, "invalid_request", "one logout_token is required, form-encoded (§2.5)",
                        f"{len(tokens)} logout_token parameters, {request.mimetype or 'no'} body")
    try:
        ended = upstream_backchannel.logout_token(journeys(), name, tokens[0])
    except errors.UpstreamVerificationFailed as exc:
        return _refused(name, "invalid_request", "the logout token is not valid", exc.detail)
    except errors.UnknownUpstream as exc:
        return _refused(name, "invalid_request", "no such upstream provider", exc.detail)
    except errors.UpstreamError as exc:  # the provider's keys could not be fetched: the logout failed (§2.8)
        return _refused(name, "invalid_request", "the logout failed; please try again", exc.detail)
    log.info("upstream %s back-channel logout: %d sessions ended", name, ended)
    return _answer(Response(status=200))


def _refused(name: str, error: str, description: str, detail: str | None) -> Response:
    log.info("upstream back-channel logout refused: upstream=%.100r detail=%s", name, detail)
    # anyone can post here: at most one audit record per window, without the caller's text
    audit.record_throttled(AuditKind.REQUEST_REFUSED, f"{request.endpoint}: logout token refused")
    response = jsonify({"error": error, "error_description": description})
    response.status_code = 400
    return _answer(response)


def _answer(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # §2.8
    response.headers["Pragma"] = "no-cache"
    return response
