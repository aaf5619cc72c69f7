"""SAML Single Logout at the broker's IdP (SAML 2.0 Profiles §4.4; GitHub issue 4): the SingleLogoutService
endpoints (HTTP-Redirect and HTTP-POST) and the front-channel chain that notifies the session's participants.

SP-initiated (§4.4.3): an SP sends a LogoutRequest (checked in ``broker.downstream.saml_logout``). It ends
this browser's SSO session only when its NameID is the subject the broker gave *that* SP in *this* session and
its SessionIndex, when present, is the session's ``sid``. Answers, all signed, at the SP's metadata endpoint:

- forged, unsigned, stale, replayed (its ID seen before), to the wrong Destination: Requester/RequestDenied
  (or the error's own status); nothing ends;
- this browser has no SSO session: Success, nothing ends (Core §3.7.3.2: there is no session left to end
  for that principal here; the SP's own session ends on its side anyway);
- this browser's session is another principal's, or another session of the same one (SessionIndex differs):
  Requester/UnknownPrincipal; nothing ends;
- a match: the session ends (browser session emptied and given a new id, registry entry ended, audit
  ``LOGGED_OUT``), the other participants are notified, and the SP gets Success, or Success/PartialLogout
  when a participant answered with an error or was skipped (Core §3.7.3.2).

IdP-initiated: ``start_chain(sso, then)`` runs the same notification after the broker ended the session itself
(OpenID Connect RP-initiated logout, the portal's sign-out), then goes to ``then``.

The chain, in sequence: every *other* SAML participant whose metadata publishes a SingleLogoutService gets a
signed LogoutRequest (its own NameID and format, SessionIndex = sid; Redirect preferred, POST otherwise), and
its LogoutResponse comes back here (signature, Issuer, InResponseTo checked); participants without SLO are
skipped; then the ``upstream_logout`` hook; then the initiator's answer. The chain's state lives in the pending
store under a new handle per step (single use, bound to this browser, also the RelayState of the step's
request) and expires after ``CHAIN_LIFETIME``; a person stuck at a participant that never answers can go on
from ``/saml2/idp/slo/continue`` (the step counts as failed: PartialLogout).

The participants are those the session registry recorded server-side (``SsoSessionRegistry.participants``,
whichever request of whichever browser tab answered the app), then any that only this browser's session still
carries (sessions started before the registry recorded them): ``core.sessions.merged_participants``.

Left alone: OpenID Connect participants are not notified (no front-/back-channel logout yet); their grants and
refresh tokens stay (the SSO session ending stops SSO and ``sid``-bound use). "Sign out everywhere" ends the
other browsers' sessions in the registry only: their SAML participants cannot be reached without the browser.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from werkzeug.wrappers import Response

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.model import Protocol
from broker.core.pending_kinds import Kind
from broker.core.sessions import Participant, SsoSession, merged_participants
from broker.downstream import saml_logout as slo
from broker.downstream.saml_requests import IncomingRequest
from broker.saml import redirect_signature
from broker.web import saml_upstream_logout
from broker.web.http import audit
from broker.web.http.browser_state import bind, current_sso, new_browser_session, unbind
from broker.web.renderer import post_form_page, support_reference
from broker.web.services import assertion_replay_guard, services

log = logging.getLogger(__name__)
bp = Blueprint("saml_logout", __name__, url_prefix="/saml2/idp")
#: this browser's current chain handle, for a LogoutResponse that comes back without RelayState
SESSION_KEY = "saml_logout"
CHAIN_LIFETIME = timedelta(minutes=5)


def upstream_logout(sso: SsoSession, return_url: str) -> Response | None:
    """Extension point: log out at the SAML upstream IdP the session came from, after the downstream participants.

    Called once per chain with the ended session (``sso.upstream``, ``sso.sid``, ``sso.account_id``) and an
    absolute ``return_url`` that resumes the chain (single use, bound to this browser, valid for
    ``CHAIN_LIFETIME``). Return the response that sends the browser upstream (a signed LogoutRequest by
    Redirect or POST; the upstream's LogoutResponse must come back to the broker's SP endpoint, which then
    redirects to ``return_url``), or None when there is nothing to do upstream: the chain then finishes at once.
    """
    return saml_upstream_logout.send_logout(sso, return_url)


@dataclass
class Chain:
    sso: SsoSession
    #: the SP that asked (SP-initiated), answered at the end; None when the broker started the logout
    initiator: slo.ReplyTo | None
    #: where to go at the end of an IdP-initiated logout; None: the "signed out" page
    then: str | None
    #: [party_id, subject, name_id_format] still to notify
    queue: list[list[Any]] = field(default_factory=list)
    #: the participant asked now and the ID of the LogoutRequest it was sent
    current: tuple[str, str] | None = None
    partial: bool = False
    upstream_done: bool = False
    sent: int = 0

    def to_json(self) -> str:
        initiator = self.initiator
        return json.dumps({
            "sso": self.sso.to_json(), "then": self.then, "queue": self.queue, "current": self.current,
            "partial": self.partial, "upstream_done": self.upstream_done, "sent": self.sent,
            "initiator": None if initiator is None else
            [initiator.issuer, initiator.request_id, initiator.binding, initiator.relay_state],
        })

    @classmethod
    def from_json(cls, text: str) -> Chain:
        try:
            raw = json.loads(text)
            initiator = slo.ReplyTo(*raw["initiator"]) if raw["initiator"] else None
            current = tuple(raw["current"]) if raw["current"] else None
            return cls(SsoSession.from_json(raw["sso"]), initiator, raw["then"], list(raw["queue"]),
                       (str(current[0]), str(current[1])) if current else None, bool(raw["partial"]),
                       bool(raw["upstream_done"]), int(raw["sent"]))
        except (ValueError, KeyError, TypeError, IndexError, RecursionError) as exc:
            raise errors.LoginStateInvalid(detail=f"stored logout chain unreadable: {type(exc).__name__}") from exc


# -- entry points ---------------------------------------------------------------------------------------------------

def start_chain(sso: SsoSession, then: str | None) -> Response | None:
    """IdP-initiated single logout for a session the caller has just ended: notify its SAML participants (and the
    upstream hook), then redirect to ``then`` (or show the "signed out" page when None). Returns None when there
    is nobody to notify, so the caller answers as it would have without SAML logout."""
    chain = Chain(sso, None, then, _queue(sso, exclude=None))
    return _advance(chain)


@bp.get("/slo/redirect")
def slo_redirect() -> Response | str:
    """Bindings §3.4: a LogoutRequest from an SP, or a participant's LogoutResponse, in the query."""
    try:
        params = redirect_signature.decoded_params(request.query_string)
    except redirect_signature.RedirectSignatureError as exc:
        raise errors.InvalidRequest(detail=f"ambiguous query: {exc}") from exc
    common = {"binding": BINDING_HTTP_REDIRECT, "relay_state": params.get("RelayState"),
              "sig_alg": params.get("SigAlg"), "signature": params.get("Signature"), "raw_query": request.query_string}
    if params.get("SAMLRequest") and "SAMLResponse" not in params:
        return _handle_request(IncomingRequest(saml_request=params["SAMLRequest"], **common))
    if params.get("SAMLResponse") and "SAMLRequest" not in params:
        return _handle_response(IncomingRequest(saml_request=params["SAMLResponse"], **common))
    raise errors.InvalidRequest(detail="SLO: exactly one of SAMLRequest and SAMLResponse expected")


@bp.post("/slo/post")
def slo_post() -> Response | str:
    """Bindings §3.5: the same, in a form. CSRF-exempt (app._csrf): cross-site by design, authenticated by the
    message's signature (a request) or by the chain handle bound to this browser and the signature (a response)."""
    form = request.form
    relay_state = form.get("RelayState")
    if form.get("SAMLRequest") and "SAMLResponse" not in form:
        return _handle_request(IncomingRequest(BINDING_HTTP_POST, form["SAMLRequest"], relay_state))
    if form.get("SAMLResponse") and "SAMLRequest" not in form:
        return _handle_response(IncomingRequest(BINDING_HTTP_POST, form["SAMLResponse"], relay_state))
    raise errors.InvalidRequest(detail="SLO: exactly one of SAMLRequest and SAMLResponse expected")


@bp.get("/slo/resume/<handle>")
def resume(handle: str) -> Response | str:
    """Where ``upstream_logout`` sends the browser back to: the chain finishes."""
    return _go_on(_take(handle))


@bp.route("/slo/continue", methods=["GET", "POST"])
def go_on() -> Response | str:
    """For a person whose sign-out stopped at an app that never answered: the page offers to go on (GET), and the
    CSRF-protected POST skips that app (the initiator then learns PartialLogout)."""
    handle = session.get(SESSION_KEY)
    if request.method == "GET":
        svc = services()
        waiting = handle is not None and handle in session.get("pending", []) \
            and svc.pending.peek(Kind.SAML_LOGOUT, handle, svc.clock.now()) is not None
        return render_template("logout_progress.html", waiting=waiting)
    chain = _take(str(handle or ""))
    if chain.current is not None:
        log.info("saml logout: %s never answered; skipped", chain.current[0])
        chain.current, chain.partial = None, True
    return _go_on(chain)


# -- SP-initiated ---------------------------------------------------------------------------------------------------

def _handle_request(incoming: IncomingRequest) -> Response | str:
    svc = services()
    now = svc.clock.now()
    catalog = svc.registry.snapshot.saml
    try:
        logout = slo.parse_logout_request(svc.idp, catalog, incoming, now)
    except slo.LogoutRejected as rejected:
        return _refuse(rejected.error, rejected.reply)
    reply = slo.ReplyTo(logout.issuer, logout.request_id, logout.binding, logout.relay_state)
    lifetime = svc.settings.saml.request_max_age + 2 * svc.settings.saml.clock_skew
    if not assertion_replay_guard(svc.pending)("saml-logout:" + logout.issuer, logout.request_id, now + lifetime):
        return _refuse(errors.InvalidRequest(detail="LogoutRequest ID seen before (replay)"), reply,
                       slo.REQUEST_DENIED)
    sso = current_sso()
    if sso is None:
        log.info("saml logout from %s: this browser has no SSO session; nothing to end", logout.issuer)
        return _answer_initiator(reply, partial=False, then=None)
    if not _names_session(sso, logout):
        return _refuse(errors.InvalidRequest(detail="NameID/SessionIndex do not name this browser's session"),
                       reply, slo.UNKNOWN_PRINCIPAL)
    _end(sso, logout.issuer, "saml single logout")
    return _go_on(Chain(sso, reply, None, _queue(sso, exclude=logout.issuer)))


def _names_session(sso: SsoSession, logout: slo.LogoutRequestIn) -> bool:
    """Core §3.7.3.2: the NameID is the one this SP was given in this session; the SessionIndex, if any, is ours.
    Any NameID this browser's session carries for the SP still counts (an earlier transient one), as before."""
    known = any(p.protocol is Protocol.SAML and p.party_id == logout.issuer and p.subject == logout.name_id
                and (p.name_id_format in (None, logout.name_id_format) or logout.name_id_format is None)
                for p in (*participants(sso), *sso.participants))
    own_qualifier = logout.sp_name_qualifier in (None, "", logout.issuer)  # not another SP's pairwise name
    return known and own_qualifier and (not logout.session_indexes or sso.sid in logout.session_indexes)


def _end(sso: SsoSession, downstream: str | None, reason: str) -> None:
    svc = services()
    new_browser_session()
    svc.sso_sessions.end(sso.sid, svc.clock.now())
    audit.record(AuditKind.LOGGED_OUT, account_id=sso.account_id, downstream=downstream, reason=reason)


def _refuse(error: errors.BrokerError, reply: slo.ReplyTo | None, substatus: str | None = None) -> Response | str:
    """A refused LogoutRequest: a signed error LogoutResponse to a registered SP's metadata endpoint, else a page."""
    if reply is None:
        raise error
    reference = support_reference()
    log.warning("ref=%s saml logout refused from=%s error=%s detail=%s", reference, reply.issuer,
                type(error).__name__, error.detail)
    audit.record(AuditKind.LOGIN_FAILED, downstream=reply.issuer, reason=f"logout: {type(error).__name__}",
                 reference=reference)
    svc = services()
    sub = substatus or error.saml_substatus
    out = slo.logout_response(svc.idp, svc.registry.snapshot.saml, reply, error.saml_status, sub, error.message)
    if out is None:
        raise error
    return _send(out)


# -- the chain ------------------------------------------------------------------------------------------------------

def participants(sso: SsoSession) -> tuple[Participant, ...]:
    """The session's participants for logout: the registry's, then those only this browser's session carries."""
    return merged_participants(services().sso_sessions.participants(sso.sid), sso.participants)


def _queue(sso: SsoSession, exclude: str | None) -> list[list[Any]]:
    """The SAML participants to notify, once each (the NameID of its latest answer), in the order they joined."""
    joined = participants(sso)
    latest: dict[str, list[Any]] = {}
    for p in joined:
        if p.protocol is Protocol.SAML and p.party_id != exclude:
            latest.pop(p.party_id, None)
            latest[p.party_id] = [p.party_id, p.subject, p.name_id_format]
    order = list(dict.fromkeys(p.party_id for p in joined if p.party_id in latest))
    return [latest[party] for party in order]


def _advance(chain: Chain, always: bool = False) -> Response | None:
    """Send the next participant its LogoutRequest; then the upstream hook; then the end. None only for an
    IdP-initiated chain (``always`` False) that had nobody to notify."""
    svc = services()
    now = svc.clock.now()
    catalog = svc.registry.snapshot.saml
    while chain.queue:
        party, subject, name_id_format = chain.queue.pop(0)
        handle = _handle()
        try:
            out = slo.logout_request(svc.idp, catalog, str(party), str(subject), name_id_format, chain.sso.sid,
                                     handle, now)
        except Exception:  # a participant gone from the registry mid-chain, unusable metadata: skip it
            log.exception("saml logout: cannot build a LogoutRequest for %s", party)
            chain.partial = True
            continue
        if out is None:
            continue  # no SingleLogoutService in its metadata: nothing to tell it
        chain.current, chain.sent = (str(party), out.message_id), chain.sent + 1
        _store(chain, handle)
        return _send(out)
    chain.current = None
    if not chain.upstream_done:
        chain.upstream_done = True
        handle = _handle()
        _store(chain, handle)
        gone = upstream_logout(chain.sso, svc.settings.url(url_for("saml_logout.resume", handle=handle)))
        if gone is not None:
            return gone
        _take(handle)
    session.pop(SESSION_KEY, None)
    if chain.initiator is not None:
        return _answer_initiator(chain.initiator, chain.partial, None)
    if chain.sent == 0 and not always:
        return None
    return _answer_initiator(None, chain.partial, chain.then)


def _go_on(chain: Chain) -> Response:
    return _advance(chain, always=True) or _answer_initiator(chain.initiator, chain.partial, chain.then)


def _answer_initiator(reply: slo.ReplyTo | None, partial: bool, then: str | None) -> Response:
    svc = services()
    if reply is not None:
        sub = slo.PARTIAL_LOGOUT if partial else None
        out = slo.logout_response(svc.idp, svc.registry.snapshot.saml, reply, slo.SUCCESS, sub)
        if out is not None:
            return _send(out)
    if then:
        return redirect(then, code=303)
    html = render_template("logout_progress.html", done=True, partial=True) if partial \
        else render_template("signed_out.html", still_signed_in=False)
    return Response(html, mimetype="text/html")


def _handle_response(incoming: IncomingRequest) -> Response | str:
    """A participant's LogoutResponse: the chain goes on (Success or not; an error makes it PartialLogout)."""
    svc = services()
    handle = incoming.relay_state or session.get(SESSION_KEY) or ""
    chain = _take(handle)
    if chain.current is None:
        _store(chain, handle)
        raise errors.LoginStateInvalid(detail="LogoutResponse while no LogoutRequest is outstanding")
    party, request_id = chain.current
    try:
        answer = slo.parse_logout_response(svc.idp, svc.registry.snapshot.saml, incoming, svc.clock.now(),
                                           expected_issuer=party, expected_request_id=request_id)
    except slo.LogoutRejected as rejected:
        _store(chain, handle)  # a forged answer must not use up the step: the real one may still come
        raise rejected.error from rejected
    if not answer.success:
        log.info("saml logout: %s answered %s/%s", party, answer.status, answer.substatus)
        chain.partial = True
    chain.current = None
    return _go_on(chain)


# -- state ----------------------------------------------------------------------------------------------------------

def _handle() -> str:
    return secrets.token_urlsafe(32)


def _store(chain: Chain, handle: str) -> None:
    svc = services()
    svc.pending.put_with_handle(Kind.SAML_LOGOUT, handle, chain.to_json(), svc.clock.now() + CHAIN_LIFETIME)
    bind(handle)
    session[SESSION_KEY] = handle


def _take(handle: str) -> Chain:
    svc = services()
    payload = svc.pending.take(Kind.SAML_LOGOUT, handle, svc.clock.now()) if handle and unbind(handle) else None
    if payload is None:
        raise errors.LoginStateInvalid(_("The sign-out could not be completed. You are signed out of this service."),
                                       detail="logout chain unknown, expired, used or from another browser")
    return Chain.from_json(payload)


def _send(out: slo.Outgoing) -> Response:
    if out.binding == BINDING_HTTP_POST:
        return post_form_page(out.post_form(), heading=_("Signing you out"))
    return redirect(out.url, code=303)
