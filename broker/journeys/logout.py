"""Single logout (SAML 2.0 Profiles §4.4; OpenID Connect RP-Initiated Logout 1.0), one journey for every way a
session ends: an SP's LogoutRequest (``app_asked``), the broker's own ending of it (``start_chain``: an OIDC
app's end-session, the portal's sign-out), and the upstream IdP's LogoutRequest
(``broker.journeys.upstream_logout``).

SP-initiated (§4.4.3): the LogoutRequest ends this browser's SSO session only when its NameID is the subject the
broker gave *that* SP in *this* session and its SessionIndex, when present, is the session's ``sid``. Answers,
all signed, at the SP's metadata endpoint:

- forged, unsigned, stale, replayed (its ID seen before), to the wrong Destination: Requester/RequestDenied
  (or the error's own status); nothing ends;
- this browser has no SSO session: Success, nothing ends (Core §3.7.3.2: there is no session left to end
  for that principal here; the SP's own session ends on its side anyway);
- this browser's session is another principal's, or another session of the same one (SessionIndex differs):
  Requester/UnknownPrincipal; nothing ends;
- a match: the session ends (browser session emptied and given a new id, registry entry ended, audit
  ``LOGGED_OUT``), the other participants are notified, and the SP gets Success, or Success/PartialLogout
  when a participant answered with an error or was skipped (Core §3.7.3.2).

The chain, in sequence: every *other* SAML participant whose metadata publishes a SingleLogoutService gets a
signed LogoutRequest (its own NameID and format, SessionIndex = sid), and its LogoutResponse comes back
(``app_answered``: signature, Issuer, InResponseTo checked by the adapter); participants without SLO are
skipped; then the IdP the session came from (``UpstreamLogout.request``), whose answer resumes the chain; then
the initiator's answer. The chain's state lives in the pending store under a new handle per step (single use,
bound to this browser, also the RelayState of the step's request) and expires after ``CHAIN_LIFETIME``; a person
stuck at a participant that never answers can go on (``skip_waiting``; the step counts as failed:
PartialLogout).

The participants are those the session registry recorded server-side (whichever request of whichever browser
tab answered the app), then any that only this browser's session still carries (sessions started before the
registry recorded them): ``core.sessions.merged_participants``.

OpenID Connect participants hear it from ``broker.journeys.session_end`` whenever a session ends here: a logout
token through the outbox (back-channel), a frame of the next page (front-channel), and the session's grants
revoked. "Sign out everywhere" reaches the other browsers' OpenID apps by the back channel; their SAML
participants cannot be reached without the browser.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from datetime import timedelta

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.logout_ports import (
    AppLogout,
    AppLogoutRequest,
    IncomingMessage,
    LogoutRefused,
    Refusal,
    ReplyTo,
)
from broker.core.model import PORTAL_PARTY, Protocol
from broker.core.outcomes import Outcome, Page, PostForm, Redirect
from broker.core.pending_kinds import Kind
from broker.core.pending_records import (
    OidcLogout,
    SamlUpstreamLogout,
    put_record,
    put_record_with_handle,
)
from broker.core.replay import first_use
from broker.core.sessions import Participant, SsoSession, merged_participants
from broker.core.texts import N_
from broker.journeys import session_end
from broker.journeys.context import Browser, Journeys
from broker.journeys.handles import take_bound
from broker.journeys.logout_chain import Chain, queue_of

log = logging.getLogger(__name__)
CHAIN_LIFETIME = timedelta(minutes=5)
#: how long the broker waits for an upstream IdP's LogoutResponse, and owes one its answer
UPSTREAM_LIFETIME = timedelta(minutes=10)
CONFIRM_LIFETIME = timedelta(minutes=10)
SIGNED_OUT = Page("signed_out.html", {"still_signed_in": False})


def _app_logout(j: Journeys) -> AppLogout:
    if j.app_logout is None:
        raise errors.InvalidRequest(detail="single logout is not wired")
    return j.app_logout


def participants(j: Journeys, sso: SsoSession) -> tuple[Participant, ...]:
    """The session's participants for logout: the registry's, then those only this browser's session carries."""
    return merged_participants(j.sso_sessions.participants(sso.sid), sso.participants)


def end(j: Journeys, browser: Browser, sso: SsoSession, *, downstream: str | None = None,
        upstream: str | None = None, reason: str | None = None) -> tuple[str, ...]:
    """The SSO session ends: the browser's session is emptied and renewed, the registry's entry ended, its OpenID
    apps told (``session_end.ended``); the front-channel logout URLs for the next page."""
    browser.sign_out()
    j.sso_sessions.end(sso.sid, j.now())
    j.audit(AuditKind.LOGGED_OUT, account_id=sso.account_id, downstream=downstream, upstream=upstream, reason=reason)
    return session_end.ended(j, sso.sid, sso.account_id, sso.participants)


# -- the broker ends a session --------------------------------------------------------------------------------------

def start_chain(j: Journeys, browser: Browser, sso: SsoSession, then: str | None) -> Outcome | None:
    """IdP-initiated single logout for a session the caller has just ended: notify its SAML participants (and the
    upstream IdP), then redirect to ``then`` (or show the "signed out" page when None). None when there is nobody
    to notify, so the caller answers as it would have without single logout."""
    return _advance(j, browser, Chain(sso, None, then, queue_of(participants(j, sso), exclude=None)))


def oidc_logout(j: Journeys, browser: Browser, done: OidcLogout, then: str | None, hint_sid: str | None,
                client_name: str | None, client_logo: str | None) -> Outcome:
    """RP-initiated logout (OIDC RP-Initiated Logout 1.0 §2): at once when the ID token hint names this
    browser's session, else after the person confirms (a logout without proof may be a forged request, §6).
    ``then`` is where to go after it (the registered ``post_logout_redirect_uri`` with ``state``)."""
    sso = browser.sso()
    if sso is None:
        return Redirect(then, 303) if then else SIGNED_OUT
    if hint_sid is not None and hint_sid == sso.sid:
        return end_oidc_session(j, browser, done, then)
    handle = put_record(j.pending, done, j.now() + CONFIRM_LIFETIME)
    browser.bind(handle)
    return Page("logout_confirm.html", {"handle": handle, "app_name": client_name, "app_logo": client_logo},
                shows_logos=True)


def take_oidc_logout(j: Journeys, browser: Browser, handle: str) -> OidcLogout:
    return take_bound(j, browser, OidcLogout, handle, "logout handle")


def end_oidc_session(j: Journeys, browser: Browser, done: OidcLogout, then: str | None) -> Outcome:
    """The confirmed (or proven) RP-initiated logout: the session ends, its SAML apps are told, then ``then``."""
    sso = browser.sso()
    if sso is None:
        browser.sign_out()
        return Redirect(then, 303) if then else SIGNED_OUT
    # gone from the portal's list of active sessions too; its OpenID apps told
    frames = end(j, browser, sso, downstream=done.client)
    chained = start_chain(j, browser, sso, then)
    if chained is not None:
        return session_end.with_frames(frames, chained)
    return session_end.with_frames(frames, Redirect(then, 303) if then else SIGNED_OUT)


def portal_sign_out(j: Journeys, browser: Browser) -> Outcome:
    """The portal's "Sign out": this browser's session ends as at an app's RP-initiated logout, and every app it
    reached is told (SAML chain, back- and front-channel logout); then the signed-out page."""
    return end_oidc_session(j, browser, OidcLogout(target=None, state=None, client=PORTAL_PARTY.party_id), None)


def after_sign_out_everywhere(j: Journeys, browser: Browser, sso: SsoSession) -> Outcome:
    """Every SSO session of the account has ended in the registry, this browser's ``sso`` too: this browser's
    SAML apps are told (other browsers' cannot be reached without them). Grants and consents stay."""
    browser.forget_sso()
    frames = session_end.ended(j, sso.sid, sso.account_id, sso.participants)
    chained = start_chain(j, browser, sso, None)
    return session_end.with_frames(
        frames, chained if chained is not None else Page("portal_done.html", {"heading": "signed_out_everywhere"}))


# -- SP-initiated ---------------------------------------------------------------------------------------------------

def app_asked(j: Journeys, browser: Browser, message: IncomingMessage) -> Outcome:
    """An SP's LogoutRequest (the module doc says what each case gets)."""
    now = j.now()
    try:
        logout = _app_logout(j).read_request(message, now)
    except LogoutRefused as refused:
        return _refuse(j, refused.error, refused.reply)
    reply = logout.reply
    if not first_use(j.pending, "saml-logout:" + reply.issuer, reply.request_id, now + j.settings.logout_replay_window):
        return _refuse(j, errors.InvalidRequest(detail="LogoutRequest ID seen before (replay)"), reply,
                       Refusal.REQUEST_DENIED)
    sso = browser.sso()
    if sso is None:
        log.info("saml logout from %s: this browser has no SSO session; nothing to end", reply.issuer)
        return _answer_initiator(j, reply, partial=False, then=None)
    if not _names_session(j, sso, logout):
        return _refuse(j, errors.InvalidRequest(detail="NameID/SessionIndex do not name this browser's session"),
                       reply, Refusal.UNKNOWN_PRINCIPAL)
    frames = end(j, browser, sso, downstream=reply.issuer, reason="saml single logout")
    chain = Chain(sso, reply, None, queue_of(participants(j, sso), exclude=reply.issuer))
    return session_end.with_frames(frames, _go_on(j, browser, chain))


def _names_session(j: Journeys, sso: SsoSession, logout: AppLogoutRequest) -> bool:
    """Core §3.7.3.2: the NameID is the one this SP was given in this session; the SessionIndex, if any, is ours.
    Any NameID this browser's session carries for the SP still counts (an earlier transient one)."""
    issuer = logout.reply.issuer
    known = any(p.protocol is Protocol.SAML and p.party_id == issuer and p.subject == logout.name_id
                and (p.name_id_format in (None, logout.name_id_format) or logout.name_id_format is None)
                for p in (*participants(j, sso), *sso.participants))
    own_qualifier = logout.sp_name_qualifier in (None, "", issuer)  # not another SP's pairwise name
    return known and own_qualifier and (not logout.session_indexes or sso.sid in logout.session_indexes)


def _refuse(j: Journeys, error: errors.BrokerError, reply: ReplyTo | None,
            refusal: Refusal | None = None) -> Outcome:
    """A refused LogoutRequest: a signed error LogoutResponse to a registered SP's metadata endpoint, else the
    error itself (a page)."""
    if reply is None:
        raise error
    reference = j.observer.reference()
    log.warning("ref=%s saml logout refused from=%s error=%s detail=%s", reference, reply.issuer,
                type(error).__name__, error.detail)
    j.audit(AuditKind.LOGIN_FAILED, downstream=reply.issuer, reason=f"logout: {type(error).__name__}",
            reference=reference)
    out = _app_logout(j).refuse(reply, error, refusal)
    if out is None:
        raise error
    return out


# -- the chain ------------------------------------------------------------------------------------------------------

def _advance(j: Journeys, browser: Browser, chain: Chain, always: bool = False) -> Outcome | None:
    """Send the next participant its LogoutRequest; then the upstream IdP; then the end. None only for an
    IdP-initiated chain (``always`` False) that had nobody to notify."""
    now = j.now()
    while chain.queue:
        participant = chain.next_participant()
        handle = secrets.token_urlsafe(32)
        try:
            sent = _app_logout(j).request(participant, chain.sso.sid, handle, now)
        except Exception:  # a participant gone from the registry mid-chain, unusable metadata: skip it
            log.exception("saml logout: cannot build a LogoutRequest for %s", participant.party_id)
            chain.not_confirmed(participant.party_id)
            continue
        if sent is None:
            continue  # no SingleLogoutService in its metadata: nothing to tell it
        chain.current, chain.sent = (participant.party_id, sent.message_id), chain.sent + 1
        _store(j, browser, chain, handle)
        return sent.outgoing
    chain.current = None
    if not chain.upstream_done:
        chain.upstream_done = True
        handle = secrets.token_urlsafe(32)
        _store(j, browser, chain, handle)
        gone = _to_upstream(j, browser, chain.sso, j.places.logout_resume(handle))
        if gone is not None:
            return gone
        _take(j, browser, handle)
    browser.keep_logout_handle(None)
    if chain.initiator is not None:
        return _answer_initiator(j, chain.initiator, chain.partial, None, chain.unconfirmed)
    if chain.sent == 0 and not always:
        return None
    return _answer_initiator(j, None, chain.partial, chain.then, chain.unconfirmed)


def _go_on(j: Journeys, browser: Browser, chain: Chain) -> Outcome:
    return _advance(j, browser, chain, always=True) or _answer_initiator(j, chain.initiator, chain.partial,
                                                                           chain.then, chain.unconfirmed)


def _answer_initiator(j: Journeys, reply: ReplyTo | None, partial: bool, then: str | None,
                      unconfirmed: Sequence[str] = ()) -> Outcome:
    if reply is not None:
        out = _app_logout(j).answer(reply, partial=partial)
        if out is not None:
            return out
    if then:
        return Redirect(then, 303)
    if not partial:
        return SIGNED_OUT
    names = [party.display_name if (party := j.registry.downstream(p)) is not None else p for p in unconfirmed]
    return Page("logout_progress.html", {"done": True, "partial": True, "unconfirmed": names})


def app_answered(j: Journeys, browser: Browser, message: IncomingMessage) -> Outcome:
    """A participant's LogoutResponse: the chain goes on (Success or not; an error makes it PartialLogout)."""
    handle = message.relay_state or browser.logout_handle() or ""
    chain = _take(j, browser, handle)
    if chain.current is None:
        _store(j, browser, chain, handle)
        raise errors.LoginStateInvalid(detail="LogoutResponse while no LogoutRequest is outstanding")
    party, request_id = chain.current
    try:
        success = _app_logout(j).read_response(message, j.now(), issuer=party, request_id=request_id)
    except LogoutRefused as refused:
        _store(j, browser, chain, handle)  # a forged answer must not use up the step: the real one may still come
        raise refused.error from refused
    if not success:
        log.info("saml logout: %s answered with an error", party)
        chain.not_confirmed(party)
    chain.current = None
    return _go_on(j, browser, chain)


def resume(j: Journeys, browser: Browser, handle: str) -> Outcome:
    """Back from the upstream IdP: the chain finishes."""
    return _go_on(j, browser, _take(j, browser, handle))


def waiting(j: Journeys, browser: Browser) -> bool:
    """Whether this browser's sign-out waits for an app's answer."""
    handle = browser.logout_handle()
    return handle is not None and browser.holds(handle) \
        and j.pending.peek(Kind.SAML_LOGOUT, handle, j.now()) is not None


def skip_waiting(j: Journeys, browser: Browser) -> Outcome:
    """The person goes on without the app that never answered (the initiator then learns PartialLogout)."""
    chain = _take(j, browser, browser.logout_handle() or "")
    if chain.current is not None:
        log.info("saml logout: %s never answered; skipped", chain.current[0])
        chain.not_confirmed(chain.current[0])
        chain.current = None
    return _go_on(j, browser, chain)


def _store(j: Journeys, browser: Browser, chain: Chain, handle: str) -> None:
    j.pending.put_with_handle(Kind.SAML_LOGOUT, handle, chain.to_json(), j.now() + CHAIN_LIFETIME)
    browser.bind(handle)
    browser.keep_logout_handle(handle)


def _take(j: Journeys, browser: Browser, handle: str) -> Chain:
    payload = j.pending.take(Kind.SAML_LOGOUT, handle, j.now()) if handle and browser.unbind(handle) else None
    if payload is None:
        raise errors.LoginStateInvalid(N_("The sign-out of your other apps could not be finished. You are signed out "
                                          "of this service."),
                                       detail="logout chain unknown, expired, used or from another browser")
    return Chain.from_json(payload)


# -- the upstream IdP -----------------------------------------------------------------------------------------------

def _to_upstream(j: Journeys, browser: Browser, sso: SsoSession, return_url: str) -> Redirect | PostForm | None:
    """A LogoutRequest to the IdP the session came from, whose answer resumes the chain at ``return_url``; None
    when there is nothing to do upstream."""
    if j.upstream_logout is None:
        return None
    relay_state = secrets.token_urlsafe(32)
    now = j.now()
    sent = j.upstream_logout.request(sso, relay_state, now)
    if sent is None:
        return None
    message, entity_id = sent
    put_record_with_handle(j.pending, relay_state, SamlUpstreamLogout(
        request_id=message.message_id, entity_id=entity_id, return_url=return_url), now + UPSTREAM_LIFETIME)
    browser.bind(relay_state)
    return message.outgoing
