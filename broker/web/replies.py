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
from broker.downstream.saml_responses import error_response
from broker.logging_setup import request_id
from broker.web import audit, metrics, oidc_answers
from broker.web.post_form import post_form_page
from broker.web.services import services

__all__ = ["DownstreamFailure", "error_page", "post_form_page", "reply_to_downstream", "support_reference"]

log = logging.getLogger("broker.errors")


class DownstreamFailure(Exception):
    def __init__(self, error: errors.BrokerError, login: LoginRequest) -> None:
        super().__init__(error.message)
        self.error, self.login = error, login


def support_reference() -> str:
    """The request's id (``X-Request-ID``, on every log line of the request), else a fresh one."""
    return request_id.get() or secrets.token_hex(6).upper()


def error_page(error: errors.BrokerError) -> Response:
    reference = support_reference()
    log.warning("ref=%s error=%s status=%s detail=%s", reference, type(error).__name__, error.http_status,
                error.detail)
    audit.record(AuditKind.LOGIN_FAILED, reason=type(error).__name__, reference=reference)
    metrics.login_failed(error)
    html = render_template("error.html", message=error.message, reference=reference)
    return Response(html, status=error.http_status, mimetype="text/html")


def reply_to_downstream(failure: DownstreamFailure) -> Response:
    """The error in the party's protocol; a page when the party is gone from the registry."""
    reference = support_reference()
    log.warning("ref=%s error=%s downstream=%s detail=%s", reference, type(failure.error).__name__,
                failure.login.downstream, failure.error.detail)
    audit.record(AuditKind.LOGIN_FAILED, downstream=failure.login.downstream, reason=type(failure.error).__name__,
                 reference=reference)
    metrics.login_failed(failure.error, failure.login.downstream)
    svc = services()
    catalog = svc.registry.snapshot.saml
    if failure.login.protocol is Protocol.SAML and failure.login.downstream in catalog.sps:
        return post_form_page(error_response(svc.idp, catalog, failure.login, failure.error))
    if failure.login.protocol is Protocol.OIDC:
        reply = oidc_answers.failure(failure.login, failure.error)
        if reply is not None:
            return reply
    return error_page(failure.error)
