"""How failures and answers reach people and parties.

A ``DownstreamFailure`` carries an error that can go back to the party in its protocol (its return
address was already checked); any other ``BrokerError`` becomes a readable page. Every error page
shows a support reference that is also in the log line with the operator detail.
"""

from __future__ import annotations

import logging
import secrets

from flask import render_template
from werkzeug.wrappers import Response

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.model import LoginRequest, Protocol
from broker.downstream.saml_responses import PostForm, error_response
from broker.web import audit
from broker.web.services import services

log = logging.getLogger("broker.errors")


class DownstreamFailure(Exception):
    def __init__(self, error: errors.BrokerError, login: LoginRequest) -> None:
        super().__init__(error.message)
        self.error, self.login = error, login


def support_reference() -> str:
    return secrets.token_hex(6).upper()


def post_form_page(form: PostForm, status: int = 200, heading: str | None = None) -> Response:
    """A page that posts ``form`` at once (with JavaScript) or when the person presses Continue."""
    html = render_template("post_form.html", form=form, heading=heading)
    return Response(html, status=status, mimetype="text/html")


def error_page(error: errors.BrokerError) -> Response:
    reference = support_reference()
    log.warning("ref=%s error=%s status=%s detail=%s", reference, type(error).__name__, error.http_status,
                error.detail)
    audit.record(AuditKind.LOGIN_FAILED, reason=type(error).__name__, reference=reference)
    html = render_template("error.html", message=error.message, reference=reference)
    return Response(html, status=error.http_status, mimetype="text/html")


def reply_to_downstream(failure: DownstreamFailure) -> Response:
    """The error in the party's protocol; a page when the party is gone from the registry."""
    reference = support_reference()
    log.warning("ref=%s error=%s downstream=%s detail=%s", reference, type(failure.error).__name__,
                failure.login.downstream, failure.error.detail)
    audit.record(AuditKind.LOGIN_FAILED, downstream=failure.login.downstream, reason=type(failure.error).__name__,
                 reference=reference)
    svc = services()
    catalog = svc.registry.snapshot.saml
    if failure.login.protocol is Protocol.SAML and failure.login.downstream in catalog.sps:
        return post_form_page(error_response(svc.idp, catalog, failure.login, failure.error))
    return error_page(failure.error)
