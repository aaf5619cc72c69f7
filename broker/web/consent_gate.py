"""The consent step of every login (DESIGN: the flow of one login, step 5), for SAML and OIDC apps alike.

``gate`` runs after the account is known and before the app's answer: it narrows the release to what the
citizen agreed to (``broker.core.consent``), records an operator exemption, or shows the consent page. The
login then waits server-side under a single-use handle bound to this browser; ``broker.web.consent`` takes the
page's answer and continues it (the SSO session was set before the page was shown).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from flask import render_template, session
from werkzeug.wrappers import Response

from broker.core import flow
from broker.core.audit import AuditKind
from broker.core.claims import BY_NAME
from broker.core.consent import ConsentQuestion, bundle, exemption, exemption_to_record, granted_claims, needs_asking
from broker.core.model import DownstreamParty, LoginRequest, LoginResult
from broker.core.pending_records import LoginAtConsent, put_record
from broker.core.release import releasable_claims
from broker.core.sessions import SsoSession
from broker.web import audit
from broker.web.browser_state import bind
from broker.web.services import services

#: apps' logos come from their registration (https or data: only, ``core.display``), so these pages may show them
LOGO_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
            "frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


@dataclass(frozen=True)
class Released:
    """The login result narrowed to the consented claims, and the claim names that decision allows."""

    result: LoginResult
    claims: frozenset[str]


def question_for(party: DownstreamParty, login_request: LoginRequest) -> ConsentQuestion:
    """What this login would release (request, registration and policy), and which of it is required."""
    svc = services()
    allowed = svc.registry.snapshot.policy.allows(party.party_id, svc.settings.release_claims)
    wanted = releasable_claims(party, login_request, allowed)
    essential = frozenset(c for c in login_request.state("essential").split(" ") if c)
    return ConsentQuestion(wanted, (party.required_claims | essential) & wanted)


def gate(result: LoginResult, sso: SsoSession) -> Released | Response:
    """The release this login may make, or the consent page."""
    svc = services()
    login_request = result.request
    party = flow.party_for(svc.registry, login_request)
    question = question_for(party, login_request)
    policy = svc.registry.snapshot.policy
    account_id = result.account.account_id
    current = svc.consents.current(account_id, party.party_id)
    if exemption_to_record(party.party_id, current, question, policy):
        current = exemption(account_id, party.party_id, question, policy, svc.clock.now())
        svc.consents.record(current)
        audit.record(AuditKind.CONSENT_GIVEN, account_id=account_id, downstream=party.party_id, reason="exempt")
    forced = "consent" in login_request.state("prompt").split(" ")
    if needs_asking(party.party_id, current, question, policy, forced):
        return _ask(login_request, party, question, sso)
    granted = granted_claims(current, question)
    released = {name: value for name, value in result.released.items() if name in granted}
    return Released(replace(result, released=released), granted)


def _ask(login_request: LoginRequest, party: DownstreamParty, question: ConsentQuestion,
         sso: SsoSession) -> Response:
    svc = services()
    session["sso"] = sso.to_json()
    prompts = " ".join(p for p in login_request.state("prompt").split(" ") if p and p != "consent")
    waiting = replace(login_request, protocol_state=tuple((k, prompts if k == "prompt" else v)
                                                          for k, v in login_request.protocol_state))
    handle = put_record(svc.pending, LoginAtConsent(waiting), svc.clock.now() + svc.settings.pending_login_lifetime)
    bind(handle)
    required = sorted(bundle(question.required))
    optional = sorted(bundle(question.optional))
    html = render_template(
        "consent.html", handle=handle, app_name=party.display_name, app_logo=party.logo_uri,
        app_policy=party.policy_uri, self_described=party.self_described,
        required=[(name, BY_NAME[name].description) for name in required],
        optional=[(name, BY_NAME[name].description) for name in optional],
    )
    return Response(html, mimetype="text/html", headers={"Content-Security-Policy": LOGO_CSP})
