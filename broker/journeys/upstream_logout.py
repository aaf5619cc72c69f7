"""Single logout started by the upstream IdP a session came from (SAML 2.0 Profiles §4.4.3.4, the broker as SP),
and the IdP's answer to the broker's own LogoutRequest (``broker.journeys.logout`` sends it at the end of a
chain). Messages are verified by the ``UpstreamLogout`` adapter before they get here.

The IdP's LogoutRequest ends this browser's session only when it names it (its NameID and SessionIndex as the
IdP issued them, Core §3.7.3); the session's SAML apps are then told by the same chain as any logout, and the IdP
gets its signed LogoutResponse at the end: Success, or Requester when the request named another person or
session (nothing ends then). A request seen before (its ID) is refused.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace

from broker.core import errors
from broker.core.logout_ports import UpstreamLogout, UpstreamLogoutMessage
from broker.core.outcomes import Outcome, Redirect
from broker.core.pending_records import SamlUpstreamLogout, SamlUpstreamLogoutReply, put_record_with_handle, take_record
from broker.core.replay import first_use
from broker.journeys import session_end
from broker.journeys.context import Browser, Journeys
from broker.journeys.handles import take_bound
from broker.journeys.logout import UPSTREAM_LIFETIME, end, start_chain

log = logging.getLogger(__name__)


def message_from_idp(j: Journeys, browser: Browser, message: UpstreamLogoutMessage,
                     relay_state: str | None) -> Outcome:
    """A verified message from an upstream IdP: the answer to the broker's LogoutRequest, or its own request."""
    if message.is_response:
        return _upstream_answered(j, browser, message, relay_state or "")
    return _upstream_asked(j, browser, message, relay_state)


def _upstream_answered(j: Journeys, browser: Browser, message: UpstreamLogoutMessage, relay_state: str) -> Outcome:
    """The IdP answered the broker's LogoutRequest: back to the chain (``resume``)."""
    stored = take_record(j.pending, SamlUpstreamLogout, relay_state, j.now()) \
        if relay_state and browser.unbind(relay_state) else None
    if stored is None:
        raise errors.LoginStateInvalid(detail="LogoutResponse for no logout of this browser")
    if message.in_response_to != stored.request_id or message.entity_id != stored.entity_id:
        raise errors.InvalidRequest(detail="LogoutResponse not in response to the broker's LogoutRequest")
    if not message.success:
        log.warning("upstream %s answered the logout with %s", message.entity_id, message.status)
    return Redirect(stored.return_url, 303)


def _upstream_asked(j: Journeys, browser: Browser, message: UpstreamLogoutMessage,
                    relay_state: str | None) -> Outcome:
    """The IdP's own LogoutRequest: it ends this browser's session only when it names it (Core §3.7.3); the
    session's SAML apps are then told by the same chain, and the IdP gets its answer at the end."""
    now = j.now()
    if not first_use(j.pending, f"logout:{message.entity_id}", message.message_id, now + UPSTREAM_LIFETIME * 2):
        raise errors.InvalidRequest(detail=f"LogoutRequest {message.message_id!r:.80} replayed")
    sso = browser.sso()
    matches = sso is not None and upstream_logout(j).names_session(sso, message)
    reply = SamlUpstreamLogoutReply(request_id=message.message_id, entity_id=message.entity_id,
                                    relay_state=relay_state, success=matches or sso is None)
    if not matches or sso is None:
        # no session here (nothing to end: Success), or another person's or session's: Requester, nothing ends
        return _upstream_reply(j, reply)
    frames = end(j, browser, sso, upstream=sso.upstream, reason="logout initiated by the upstream IdP")
    handle = secrets.token_urlsafe(32)
    put_record_with_handle(j.pending, handle, reply, now + UPSTREAM_LIFETIME)
    browser.bind(handle)
    then = j.places.upstream_logout_reply(handle)
    # the IdP ends its own session: the chain notifies the apps only, not the IdP again
    chained = start_chain(j, browser, replace(sso, upstream_state=()), then)
    return session_end.with_frames(frames, chained if chained is not None else Redirect(then, 303))


def reply(j: Journeys, browser: Browser, handle: str) -> Outcome:
    """After the chain: the signed LogoutResponse to the IdP that asked."""
    return _upstream_reply(j, take_bound(j, browser, SamlUpstreamLogoutReply, handle, "logout reply handle"))


def _upstream_reply(j: Journeys, reply: SamlUpstreamLogoutReply) -> Outcome:
    return upstream_logout(j).answer(reply.entity_id, reply.request_id, reply.success, reply.relay_state, j.now())


def upstream_logout(j: Journeys) -> UpstreamLogout:
    if j.upstream_logout is None:
        raise errors.InvalidRequest(detail="upstream single logout is not wired")
    return j.upstream_logout
