"""The broker's SingleLogoutService as a SAML SP (``/saml2/sp/slo/redirect`` and ``/saml2/sp/slo/post``).

Two messages arrive here from upstream IdPs (SAML 2.0 Profiles §4.4), each verified by
``broker.upstream.saml_slo`` against the sending IdP's metadata:

- the LogoutResponse to the broker's own LogoutRequest (``broker.web.saml_upstream_logout``): accepted only in
  the browser that sent the request (its RelayState handle, single use) and ``InResponseTo`` that request;
  the logout chain then resumes where it left off.
- an IdP-initiated LogoutRequest: it ends this browser's SSO session only when the session came from that IdP
  and the NameID (and SessionIndex, when given) are the ones the IdP issued for it (Core §3.7.3). The session's
  SAML apps are then notified by the same chain as any logout, and the IdP gets a signed LogoutResponse:
  Success, or Requester when the request named another person or session (nothing ends then). A request
  seen before (its ID) is refused.

The IdP's POST is cross-site: the broker first posts the same fields to itself, same-site, with the cookie.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from datetime import datetime

from flask import Blueprint, redirect, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.outcomes import PostForm
from broker.core.pending_records import SamlUpstreamLogout, SamlUpstreamLogoutReply, put_record_with_handle, take_record
from broker.core.sessions import SsoSession
from broker.upstream import saml_slo
from broker.upstream.saml_settings import UpstreamIdp
from broker.web import saml_logout
from broker.web.http import audit
from broker.web.http.browser_state import bind, current_sso, new_browser_session, take_bound, unbind
from broker.web.renderer import outgoing_page, post_form_page
from broker.web.services import assertion_replay_guard, services

log = logging.getLogger(__name__)
bp = Blueprint("saml_sp_slo", __name__, url_prefix="/saml2/sp/slo")
SAME_SITE_MARK = "_same_site"


@bp.get("/redirect")
def slo_redirect() -> Response:
    return _handle(request.args.to_dict(), request.query_string, url_for("saml_sp_slo.slo_redirect"))


@bp.post("/post")
def slo_post() -> Response:
    form = request.form.to_dict()
    if SAME_SITE_MARK not in form and form.get("RelayState", "") not in session.get("pending", []):
        fields = tuple(sorted({**form, SAME_SITE_MARK: "1"}.items()))
        return post_form_page(PostForm(services().settings.url(url_for("saml_sp_slo.slo_post")), fields),
                              heading=_("Signing you out"))
    form.pop(SAME_SITE_MARK, None)
    return _handle(form, None, url_for("saml_sp_slo.slo_post"))


def _handle(params: dict[str, str], query_string: bytes | None, path: str) -> Response:
    svc = services()
    now = svc.clock.now()
    try:
        message, idp = saml_slo.read_message(params, query_string, svc.saml_upstream_by_entity, svc.saml_sp,
                                             svc.settings.url(path), now)
    except saml_slo.LogoutRefused as exc:
        raise errors.InvalidRequest(detail=f"SAML logout message refused: {exc}") from exc
    if message.kind == "LogoutResponse":
        return _resume(message, idp, params.get("RelayState", ""), now)
    return _idp_initiated(message, idp, params.get("RelayState"), now)


def _resume(message: saml_slo.IdpLogout, idp: UpstreamIdp, relay_state: str, now: datetime) -> Response:
    """The IdP answered the broker's LogoutRequest: back to the chain (``saml_logout.resume``)."""
    svc = services()
    stored = take_record(svc.pending, SamlUpstreamLogout, relay_state, now) if relay_state and unbind(relay_state) \
        else None
    if stored is None:
        raise errors.LoginStateInvalid(detail="LogoutResponse for no logout of this browser")
    if message.in_response_to != stored.request_id or idp.entity_id != stored.entity_id:
        raise errors.InvalidRequest(detail="LogoutResponse not in response to the broker's LogoutRequest")
    if message.status != saml_slo.SUCCESS:
        log.warning("upstream %s answered the logout with %s", idp.entity_id, message.status)
    return redirect(stored.return_url, code=303)


def _names_this_session(sso: SsoSession | None, message: saml_slo.IdpLogout, idp: UpstreamIdp) -> bool:
    if sso is None:
        return False
    state = dict(sso.upstream_state)
    upstream = services().saml_upstream(sso.upstream)
    return (upstream is not None and upstream.entity_id == idp.entity_id and bool(state.get("name_id"))
            and message.name_id == state["name_id"]
            and (not message.session_indexes or state.get("session_index") in message.session_indexes))


def _idp_initiated(message: saml_slo.IdpLogout, idp: UpstreamIdp, relay_state: str | None,
                   now: datetime) -> Response:
    svc = services()
    first_use = assertion_replay_guard(svc.pending)
    if not first_use(f"logout:{idp.entity_id}", message.message_id, now + saml_slo.MAX_AGE * 2):
        raise errors.InvalidRequest(detail=f"LogoutRequest {message.message_id!r:.80} replayed")
    sso = current_sso()
    matches = _names_this_session(sso, message, idp)
    reply = SamlUpstreamLogoutReply(request_id=message.message_id, entity_id=idp.entity_id, relay_state=relay_state,
                                    success=matches or sso is None)
    if not matches or sso is None:
        # no session here (nothing to end: Success), or another person's or session's: Requester, nothing ends
        return _reply(reply, now)
    new_browser_session()
    svc.sso_sessions.end(sso.sid, now)
    audit.record(AuditKind.LOGGED_OUT, account_id=sso.account_id, upstream=sso.upstream,
                 reason="logout initiated by the upstream IdP")
    handle = secrets.token_urlsafe(32)
    put_record_with_handle(svc.pending, handle, reply, now + saml_slo.MAX_AGE)
    bind(handle)
    then = svc.settings.url(url_for("saml_sp_slo.reply", handle=handle))
    # the IdP ends its own session: the chain notifies the apps only, not the IdP again
    chained = saml_logout.start_chain(replace(sso, upstream_state=()), then)
    return chained if chained is not None else redirect(then, code=303)


@bp.get("/reply/<handle>")
def reply(handle: str) -> Response:
    """After the chain: the signed LogoutResponse to the IdP that asked."""
    svc = services()
    now = svc.clock.now()
    stored = take_bound(svc.pending, SamlUpstreamLogoutReply, handle, now, "logout reply handle")
    return _reply(stored, now)


def _reply(reply: SamlUpstreamLogoutReply, now: datetime) -> Response:
    svc = services()
    idp = svc.saml_upstream_by_entity(reply.entity_id)
    if idp is None:
        raise errors.UnknownUpstream(detail=f"IdP {reply.entity_id!r:.200} is no longer registered")
    outgoing = saml_slo.logout_response(svc.saml_sp, idp, reply.request_id, reply.success,
                                        reply.relay_state or None, now)
    if outgoing is None:
        raise errors.UnknownUpstream(detail=f"IdP {idp.entity_id} publishes no SingleLogoutService")
    return outgoing_page(outgoing)
