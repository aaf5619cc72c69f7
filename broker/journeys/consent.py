"""The consent step of every login (DESIGN: the flow of one login, step 5), for SAML and OIDC apps alike.

``gate`` runs after the account is known and before the app's answer: it narrows the release to what the
citizen agreed to (``broker.core.consent``), records an operator exemption, or shows the consent page. The
login then waits server-side under a single-use handle bound to this browser, and ``decide`` continues it
with the page's answer (the SSO session was set before the page was shown).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from broker.core import errors, flow
from broker.core.audit import AuditKind
from broker.core.claims import BY_NAME
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
from broker.core.outcomes import Outcome, Page
from broker.core.pending_records import LoginAtConsent, put_record
from broker.core.release import releasable_claims
from broker.core.sessions import SsoSession
from broker.journeys.context import Browser, DownstreamFailure, Journeys
from broker.journeys.handles import take_bound


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


def gate(j: Journeys, browser: Browser, result: LoginResult, sso: SsoSession) -> Released | Page:
    """The release this login may make, or the consent page."""
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
         sso: SsoSession) -> Page:
    browser.keep_sso(sso)
    prompts = " ".join(p for p in login.state("prompt").split(" ") if p and p != "consent")
    waiting = replace(login, protocol_state=tuple((k, prompts if k == "prompt" else v)
                                                  for k, v in login.protocol_state))
    handle = put_record(j.pending, LoginAtConsent(waiting), j.now() + j.settings.pending_login_lifetime)
    browser.bind(handle)
    return Page("consent.html", {
        "handle": handle, "app_name": party.display_name, "app_logo": party.logo_uri,
        "app_policy": party.policy_uri, "self_described": party.self_described,
        "required": [(name, BY_NAME[name].description) for name in sorted(bundle(question.required))],
        "optional": [(name, BY_NAME[name].description) for name in sorted(bundle(question.optional))],
    }, shows_logos=True)


def decide(j: Journeys, browser: Browser, handle: str, allow: bool, ticked: frozenset[str]) -> Outcome:
    """The person's answer on the consent page: allow with the optional claims ``ticked``, or decline, which
    the app hears in its protocol (SAML RequestDenied, OIDC ``access_denied``)."""
    from broker.journeys import login  # login imports this module (``gate``): import at call time

    now = j.now()
    waiting = take_bound(j, browser, LoginAtConsent, handle, "consent handle").login
    sso = browser.sso()
    if sso is None:
        raise DownstreamFailure(errors.LoginStateInvalid(detail="SSO session ended before consent"), waiting)
    party = flow.party_for(j.registry, waiting)
    question = question_for(j, party, waiting)
    if not allow:
        j.audit(AuditKind.CONSENT_DECLINED, account_id=sso.account_id, downstream=waiting.downstream,
                reason=declined_reason(bundle(question.wanted)))
        raise DownstreamFailure(errors.ConsentDeclined(), waiting)
    given = answer(sso.account_id, party.party_id, question, ticked, j.release_policy(), now)
    j.consents.record(given)
    j.audit(AuditKind.CONSENT_GIVEN, account_id=sso.account_id, downstream=party.party_id,
            reason="page" + (f"; {declined_reason(given.declined)}" if given.declined else ""))
    return login.answer_from_session(j, browser, waiting, sso, how="consent")
