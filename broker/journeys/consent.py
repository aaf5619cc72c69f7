"""The consent step of every login (DESIGN: the flow of one login, step 5), for SAML and OIDC apps alike.

``gate`` runs after the account is known and before the app's answer: it narrows the release to what the
citizen agreed to (``broker.core.consent``), records an operator exemption, or sends the browser to the consent
page. The login then waits server-side under a single-use handle bound to this browser, and ``decide`` continues
it with the page's answer (the SSO session was set before the page was shown).

Post/redirect/get (issue 20, "Dead ends"; RFC 9110 §15.4.4): the page is never the answer to the upstream's
callback, which a reload or Back would replay. ``gate`` answers with a 303 to the page's own address, where ``show``
renders it from the waiting login as often as the browser asks. Declining first shows the citizen a sentence
(``decide``); only "Return to the app" (``give_up``) takes the login and sends the app its protocol's refusal.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NoReturn

from broker.core import errors, flow
from broker.core.audit import AuditKind
from broker.core.consent import (
    ConsentQuestion,
    answer,
    bundle,
    declined_reason,
    exemption,
    exemption_to_record,
    granted_claims,
    needs_asking,
)
from broker.core.model import DownstreamParty, LoginRequest, LoginResult
from broker.core.outcomes import Outcome, Page, Redirect
from broker.core.pending_records import LoginAtConsent, peek_record, put_record
from broker.core.release import releasable_claims
from broker.core.sessions import SsoSession
from broker.journeys.context import Browser, DownstreamFailure, Journeys
from broker.journeys.handles import take_bound
from broker.journeys.portal_words import label


@dataclass(frozen=True)
class Released:
    """The login result narrowed to the consented claims, and the claim names that decision allows."""

    result: LoginResult
    claims: frozenset[str]


def question_for(j: Journeys, party: DownstreamParty, login: LoginRequest,
                 wanted: frozenset[str] | None = None) -> ConsentQuestion:
    """What this login would release (``wanted``, when the login's result already says: request, registration
    and policy), and which of it is required."""
    if wanted is None:
        wanted = releasable_claims(party, login, j.release_cap(party.party_id))
    essential = frozenset(c for c in login.state("essential").split(" ") if c)
    return ConsentQuestion(wanted, (party.required_claims | essential) & wanted)


def gate(j: Journeys, browser: Browser, result: LoginResult, sso: SsoSession) -> Released | Redirect:
    """The release this login may make, or the way to the consent page (303, post/redirect/get)."""
    login = result.request
    party = flow.party_for(j.registry, login)
    question = question_for(j, party, login, result.releasable)  # computed once, with the release
    policy = j.release_policy()
    account_id = result.account.account_id
    current = j.consents.current(account_id, party.party_id)
    if exemption_to_record(party.party_id, current, question, policy):
        current = exemption(account_id, party.party_id, question, policy, j.now())
        j.consents.record(current)
        j.audit(AuditKind.CONSENT_GIVEN, account_id=account_id, downstream=party.party_id, reason="exempt")
    forced = "consent" in login.state("prompt").split(" ")
    if needs_asking(party.party_id, current, question, policy, forced):
        return _ask(j, browser, login, party, question, sso)
    granted = granted_claims(current, question)
    released = {name: value for name, value in result.released.items() if name in granted}
    return Released(replace(result, released=released), granted)


def _ask(j: Journeys, browser: Browser, login: LoginRequest, party: DownstreamParty, question: ConsentQuestion,
         sso: SsoSession) -> Redirect:
    browser.keep_sso(sso)
    prompts = " ".join(p for p in login.state("prompt").split(" ") if p and p != "consent")
    waiting = replace(login, protocol_state=tuple((k, prompts if k == "prompt" else v)
                                                  for k, v in login.protocol_state))
    handle = put_record(j.pending, LoginAtConsent(waiting), j.now() + j.settings.pending_login_lifetime)
    browser.bind(handle)
    return Redirect(j.places.consent(handle), 303)


def _waiting(j: Journeys, browser: Browser, handle: str) -> LoginRequest | None:
    """The login waiting at consent under ``handle`` if this browser holds it; it stays stored."""
    stored = peek_record(j.pending, LoginAtConsent, handle, j.now()) if browser.holds(handle) else None
    return None if stored is None else stored.login


def show(j: Journeys, browser: Browser, handle: str) -> Page | None:
    """The consent page of the login waiting under ``handle`` (the same page at every reload), or None when
    this browser has no login waiting there (answered, expired, or another browser's)."""
    login = _waiting(j, browser, handle)
    if login is None:
        return None
    party = flow.party_for(j.registry, login)
    question = question_for(j, party, login)  # what ``decide`` records, so the page shows the same
    return Page("consent.html", {
        "handle": handle, "app_name": party.display_name, "app_logo": party.logo_uri,
        "app_policy": party.policy_uri, "self_described": party.self_described,
        "required": [(name, label(name)) for name in sorted(bundle(question.required))],
        "optional": [(name, label(name)) for name in sorted(bundle(question.optional))],
    }, shows_logos=True, no_store=True)


def decide(j: Journeys, browser: Browser, handle: str, allow: bool, ticked: frozenset[str]) -> Outcome:
    """The person's answer on the consent page: allow with the optional claims ``ticked``, or decline, which
    first shows the citizen what it means (``declined``); the login keeps waiting until ``give_up``."""
    from broker.journeys import login  # login imports this module (``gate``): import at call time

    if not allow:
        return declined(j, browser, handle)
    now = j.now()
    waiting = take_bound(j, browser, LoginAtConsent, handle, "consent handle").login
    sso = browser.sso()
    if sso is None:
        raise DownstreamFailure(errors.LoginStateInvalid(detail="SSO session ended before consent"), waiting)
    party = flow.party_for(j.registry, waiting)
    question = question_for(j, party, waiting)
    given = answer(sso.account_id, party.party_id, question, ticked, j.release_policy(), now)
    j.consents.record(given)
    j.audit(AuditKind.CONSENT_GIVEN, account_id=sso.account_id, downstream=party.party_id,
            reason="page" + (f"; {declined_reason(given.declined)}" if given.declined else ""))
    return login.answer_from_session(j, browser, waiting, sso, how="consent")


def declined(j: Journeys, browser: Browser, handle: str) -> Page:
    """The page after "Do not allow": the sentence saying what it means, "Return to the app" (``give_up``) and
    "Change my answer" (the consent page again, the login still waiting). Nothing is recorded yet."""
    waiting = _waiting(j, browser, handle)
    if waiting is None:
        raise errors.LoginStateInvalid(detail="consent handle unknown, expired, used or from another browser")
    party = flow.party_for(j.registry, waiting)
    return Page("consent_declined.html", {"handle": handle, "app_name": party.display_name}, no_store=True)


def give_up(j: Journeys, browser: Browser, handle: str) -> NoReturn:
    """"Return to the app" after declining: the login is taken (once) and the app hears its protocol's refusal,
    SAML Responder/RequestDenied (SAML Core §3.2.2.2) or OIDC ``access_denied`` (RFC 6749 §4.1.2.1)."""
    waiting = take_bound(j, browser, LoginAtConsent, handle, "consent handle").login
    sso = browser.sso()
    party = flow.party_for(j.registry, waiting)
    question = question_for(j, party, waiting)
    j.audit(AuditKind.CONSENT_DECLINED, account_id=sso.account_id if sso is not None else None,
            downstream=waiting.downstream, reason=declined_reason(bundle(question.wanted)))
    raise DownstreamFailure(errors.ConsentDeclined(), waiting)
