"""Sending the browser to an upstream SAML IdP with a signed AuthnRequest (``broker.upstream.saml_sp``), and the
pending request it leaves behind for the ACS (``broker.web.saml_sp``)."""

from __future__ import annotations

from datetime import datetime

from flask import redirect
from werkzeug.wrappers import Response

from broker.core import errors
from broker.core.model import LoginRequest
from broker.core.pending_records import LoginAtSamlUpstream, put_record_with_handle
from broker.downstream.saml_responses import PostForm
from broker.upstream.saml_settings import Outgoing, SamlPending, UpstreamIdp
from broker.web.browser_state import bind
from broker.web.replies import DownstreamFailure, post_form_page
from broker.web.services import services


def outgoing_page(outgoing: Outgoing, heading: str | None = None) -> Response:
    """A SAML message through the browser: a redirect, or a page that posts the form."""
    if outgoing.is_post:
        return post_form_page(PostForm(outgoing.url, outgoing.fields), heading=heading)
    return redirect(outgoing.url)


def send(login_request: LoginRequest, idp: UpstreamIdp, now: datetime) -> Response:
    """Step 4 (out) for a SAML IdP: the pending login moves into the pending AuthnRequest."""
    svc = services()
    try:
        outgoing, pending = svc.saml_sp.authn_request(idp, login_request, now)
    except errors.BrokerError as exc:
        raise DownstreamFailure(exc, login_request) from exc
    put_record_with_handle(svc.pending, pending.relay_state,
                           LoginAtSamlUpstream(login=login_request, upstream=pending.to_json()),
                           now + svc.settings.pending_login_lifetime)
    bind(pending.relay_state)
    return outgoing_page(outgoing)


def idp_of(pending: SamlPending) -> UpstreamIdp:
    """The IdP ``pending`` was sent to, as registered now; an answer for a request whose IdP is gone (or now
    has another entity ID under that name) is refused, whatever it says."""
    idp = services().saml_upstream(pending.upstream)
    if idp is None or idp.entity_id != pending.entity_id:
        raise errors.UpstreamVerificationFailed(detail=f"upstream {pending.upstream!r} is no longer registered")
    return idp
