"""The login journey (DESIGN: the flow of one login), the same for every protocol on either side.

1. ``begin``: an app's request, parsed by its downstream adapter, is answered from the SSO session, or sent to
   the upstream the request, the app or the registry decides, or waits for the person's choice on the
   discovery page (``choose``).
2. The upstream adapter sends the browser upstream; its pending request waits server-side under the handle
   the answer carries back (``state``, ``RelayState``), bound to this browser.
3. ``broker.journeys.upstream_answers`` takes it back and ``after_upstream`` verifies the answer through the
   adapter; a verified address that matches another account may first become a link offer
   (``broker.journeys.link_offer``).
4. ``sign_in``: account, unified profile and release (``core.flow``), a new SSO session registered
   server-side, a new browser identity.
5. ``answer``: consent (``broker.journeys.consent``), then the app's answer from its downstream adapter; the
   app joins the SSO session's participants, server-side, for logout.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from broker.core import errors, flow, sessions
from broker.core.audit import AuditKind
from broker.core.login_time import with_duration
from broker.core.model import PORTAL_PARTY, LoginRequest, LoginResult, Protocol, UpstreamParty
from broker.core.outcomes import Outcome, PostForm, Redirect
from broker.core.pending_records import (
    LoginAtDiscovery,
    LoginAtOidcUpstream,
    LoginAtSamlUpstream,
    peek_record,
    put_record,
    put_record_with_handle,
    take_record,
)
from broker.core.ports import SsoSessionRecord
from broker.core.protocol_ports import DownstreamMessage, RequestRefused, UpstreamAdapter, VerifiedAnswer
from broker.core.risk import Decision
from broker.core.sessions import SsoSession
from broker.core.upstream_logout_tokens import upstream_sid
from broker.journeys import account_status, app_roles, consent, link_offer, risk_check, step_up
from broker.journeys.context import Browser, DownstreamFailure, Journeys

log = logging.getLogger(__name__)

#: the record a login waits in while its upstream answers, by the upstream's protocol (their kinds are stored)
AT_UPSTREAM = {Protocol.OIDC: LoginAtOidcUpstream, Protocol.SAML: LoginAtSamlUpstream}


def read_request(j: Journeys, protocol: Protocol, message: DownstreamMessage) -> LoginRequest:
    """Step 1: an app's request, read and checked by the downstream adapter of its protocol. A refusal goes back
    to the app in its protocol once its return address was checked, else it is the person's page."""
    downstream = j.downstreams.get(protocol)
    if downstream is None:
        raise errors.InvalidRequest(detail=f"no downstream adapter for {protocol.value}")
    with j.observer.step("parse_request"):
        try:
            return downstream.read(message, j.now())
        except RequestRefused as refused:
            if refused.reply is not None:
                raise DownstreamFailure(refused.error, refused.reply) from refused
            raise refused.error from refused


def begin(j: Journeys, browser: Browser, login: LoginRequest) -> Outcome:
    """Steps 2-3: answer from the SSO session, or go upstream (directly or through discovery)."""
    now = j.now()
    party = flow.party_for(j.registry, login)
    login = flow.with_requirements(party, login, j.settings.assurance)  # the operator's minimum assurance
    login = login if login.started_at is not None else replace(login, started_at=now)  # its login time starts
    sso = browser.sso()
    j.observer.login_started()
    log.info("login begin downstream=%s protocol=%s", login.downstream, login.protocol.value)
    if sessions.satisfies(sso, login, party, now, j.settings.assurance):
        assert sso is not None
        j.observer.login_succeeded(sso.upstream, login.downstream, "sso")
        return answer_from_session(j, browser, login, sso, how="sso")
    if sso is not None and sessions.still_signed_in(sso, login, party, now):
        # all but the level: a second factor of the account may raise the session without a new upstream sign-in
        stepping_up = step_up.challenge_session(j, browser, login, sso, now)
        if stepping_up is not None:
            return stepping_up
    if login.passive:
        raise DownstreamFailure(errors.NoPassive(), login)
    try:
        choice = flow.choose_upstream(j.registry, party, login)
    except errors.BrokerError as exc:
        raise DownstreamFailure(exc, login) from exc
    if choice.direct is not None:
        # one upstream decided (the request's hint, or the only one allowed): straight there, no stop on the way
        return start_upstream(j, browser, login, choice.direct, now)
    handle = put_record(j.pending, LoginAtDiscovery(login), now + j.settings.pending_login_lifetime)
    browser.bind(handle)
    return Redirect(j.places.discovery(handle))


def waiting_login(j: Journeys, browser: Browser, handle: str) -> LoginRequest:
    """The login waiting on the discovery page under ``handle``, which stays stored (the page may reload)."""
    stored = peek_record(j.pending, LoginAtDiscovery, handle, j.now()) if browser.holds(handle) else None
    if stored is None:
        raise errors.LoginStateInvalid(detail="login handle unknown, expired, used or from another browser")
    return stored.login


def choose(j: Journeys, browser: Browser, handle: str, name: str) -> Outcome:
    """The discovery page's choice (an upstream's name, or an IdP's entity ID): the waiting login, used once,
    goes there if its app may use it."""
    now = j.now()
    login = waiting_login(j, browser, handle)
    party = flow.party_for(j.registry, login)
    try:
        upstream = flow.check_upstream_allowed(j.registry, party, name)
    except errors.BrokerError as exc:
        raise DownstreamFailure(exc, login) from exc
    if not browser.unbind(handle) or take_record(j.pending, LoginAtDiscovery, handle, now) is None:
        raise errors.LoginStateInvalid(detail="login handle already used")
    return start_upstream(j, browser, login, upstream, now)


def start_upstream(j: Journeys, browser: Browser, login: LoginRequest, upstream: UpstreamParty,
                   now: datetime) -> Redirect | PostForm:
    """Step 4 (out): the login moves into the upstream's pending request."""
    with j.observer.step("go_upstream"):
        try:
            adapter = j.adapter_for(upstream.protocol)
            started = adapter.begin(upstream.name, now, login)
        except errors.BrokerError as exc:
            raise DownstreamFailure(exc, login) from exc
        record = AT_UPSTREAM[adapter.protocol](login=login, upstream=started.pending)
        put_record_with_handle(j.pending, started.handle, record, now + j.settings.pending_login_lifetime)
        browser.bind(started.handle)
        return started.outgoing


def after_upstream(j: Journeys, browser: Browser, login: LoginRequest, adapter: UpstreamAdapter, pending: str,
                   reply: Mapping[str, str], arrived_at: str | None, now: datetime) -> Outcome:
    """Step 4 (back): the upstream's answer, verified by its adapter; then a link offer, or steps 5 and 6."""
    try:
        with j.observer.step("upstream_verify"):
            verified = adapter.finish(pending, reply, now, arrived_at=arrived_at)
        offered = link_offer.consider(j, browser, login, verified.identity, now)
    except errors.BrokerError as exc:
        raise DownstreamFailure(exc, login) from exc
    if offered is not None:
        return offered  # a verified address matches another account: offer, never merge
    return sign_in(j, browser, login, verified, now)


def unsolicited(j: Journeys, browser: Browser, adapter: UpstreamAdapter, reply: Mapping[str, str],
                now: datetime) -> Outcome:
    """An answer no login of this browser waits for: where the protocol allows one (SAML IdP-initiated SSO),
    it signs the person in to the portal."""
    with j.observer.step("upstream_verify"):
        verified = adapter.finish_unsolicited(reply, now)
    portal = LoginRequest(PORTAL_PARTY.party_id, Protocol.PORTAL, j.places.portal_home(), None, None, frozenset())
    return sign_in(j, browser, portal, verified, now)


def sign_in(j: Journeys, browser: Browser, login: LoginRequest, verified: VerifiedAnswer,
            now: datetime) -> Outcome:
    """Steps 5 and 6 for a verified upstream identity: a second factor if the app needs more than the upstream
    gave (``step_up``), then account, profile, release, a new SSO session, answer."""
    identity = verified.identity
    known = j.accounts.find_by_identity(identity.issuer, identity.subject)  # for the risk and step-up steps
    account_status.refuse_disabled(j, known, login, identity.upstream)  # before any step-up is asked for
    account_id = known.account_id if known is not None else None
    risk = risk_check.assess(j, browser, login, identity, account_id, now)  # a refusal is the app's failure
    forced = risk is not None and risk.decision is Decision.STEP_UP
    stepping_up = step_up.challenge(j, browser, login, verified, account_id, now, forced=forced)
    if stepping_up is not None:
        return stepping_up
    if forced:
        j.audit(AuditKind.RISK_CHALLENGE, upstream=identity.upstream, downstream=login.downstream,
                reason="step-up asked, but the account has no second factor: signed in without one")
    with j.unit_of_work():  # account, history, session, grant and audit: one commit (issue 21)
        try:
            party = flow.party_for(j.registry, login)
            with j.observer.step("complete_login"):
                result = flow.complete_login(j.accounts, party, login, identity, now, j.release_cap(party.party_id),
                                             j.settings.release_unverified_email, j.settings.profile,
                                             j.settings.assurance, found=known)  # looked up once, above
        except errors.BrokerError as exc:
            raise DownstreamFailure(exc, login) from exc
        if result.identifier_changed:  # RISC identifier-changed, never with the new address
            account_status.identifier_changed(j, result.account.account_id, now)
        # The session keeps the level actually reached; each app is told its own view of it (flow.reported_acr).
        return start_session(j, browser, result, j.settings.assurance.canonical(identity.acr),
                             verified.upstream_state, now)


def start_session(j: Journeys, browser: Browser, result: LoginResult, reached: str | None,
                  upstream_state: tuple[tuple[str, str], ...], now: datetime) -> Outcome:
    """A new SSO session at the level ``reached``, registered server-side with the upstream OpenID provider's own
    session id when its adapter gave one (``upstream_sid``: its logout tokens end this session), in a new browser
    identity; then the app's answer."""
    login = result.request
    risk_check.completed(j, browser, result.account.account_id, now)
    sso = sessions.new_session(result.account.account_id, result.upstream, reached, result.auth_time, now,
                               j.settings.sso_session_lifetime, upstream_state, result.amr)
    j.sso_sessions.register(SsoSessionRecord(sso.sid, sso.account_id, sso.upstream, now, now, sso.expires_at,
                                             browser.user_agent, upstream_sid=upstream_sid(upstream_state)))
    browser.renew()
    log.info("login ok account=%s upstream=%s downstream=%s created=%s", result.account.account_id,
             result.upstream, login.downstream, result.created_account)
    j.observer.login_succeeded(result.upstream, login.downstream, "upstream")
    return answer(j, browser, result, sso, how="upstream", registered=True)


def answer_from_session(j: Journeys, browser: Browser, login: LoginRequest, sso: SsoSession, how: str) -> Outcome:
    """The SSO session answers ``login`` (it satisfies it, or the person just consented)."""
    party = flow.party_for(j.registry, login)
    result = flow.answer_from_session(j.accounts, party, login, sso, j.release_cap(party.party_id),
                                      j.settings.release_unverified_email, j.settings.profile, j.settings.assurance)
    account_status.refuse_disabled(j, result.account, login, sso.upstream)  # a session the disabling missed
    return answer(j, browser, result, sso, how)


def answer(j: Journeys, browser: Browser, result: LoginResult, sso: SsoSession, how: str,
           registered: bool = False) -> Outcome:
    """Step 6: consent, then the app's answer in its protocol; the app joins the SSO session's participants.

    The session is noted as seen now (``touch``) unless this request ``registered`` it, already seen now: one
    write of the new session, not a write and a rewrite (issue 21)."""
    with j.observer.step("answer"), j.unit_of_work():  # the step's writes: one transaction (issue 21)
        now = j.now()
        if not registered:
            j.sso_sessions.touch(sso.sid, now)
        login = result.request
        if login.protocol is Protocol.PORTAL:
            # The broker's own portal: it receives no claims, so there is nothing to consent to or release.
            browser.keep_sso(sso)
            j.audit(AuditKind.LOGIN_SUCCEEDED, account_id=result.account.account_id, upstream=result.upstream,
                    downstream=login.downstream, reason=with_duration(how, login.started_at, now))
            return Redirect(login.return_to or j.places.portal_home(), 303)  # a portal page (the broker's own)
        gated = consent.gate(j, browser, app_roles.with_roles(j, result), sso)  # the app's roles, then consent
        if not isinstance(gated, consent.Released):
            return gated  # the consent page; the login continues in ``consent.decide``
        downstream = j.downstreams.get(login.protocol)
        if downstream is None:
            raise errors.UnknownParty(detail=f"no downstream adapter for {login.protocol.value}")
        answered = downstream.answer(gated.result, gated.claims, sso.sid, j.registry.upstream(result.upstream), now)
        browser.keep_sso(sso.with_participant(answered.participant))
        j.sso_sessions.join(sso.sid, answered.participant, now)
        j.audit(AuditKind.LOGIN_SUCCEEDED, account_id=result.account.account_id, upstream=result.upstream,
                downstream=login.downstream, reason=with_duration(how, login.started_at, j.now()))
        return answered.outgoing


def failure_answer(j: Journeys, login: LoginRequest, error: errors.BrokerError) -> Redirect | PostForm | None:
    """The error as the app that started ``login`` hears it, or None when it can no longer be told (a page)."""
    downstream = j.downstreams.get(login.protocol)
    return downstream.failure(login, error) if downstream is not None else None
