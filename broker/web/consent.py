"""The consent page's answer (``broker.web.consent_gate`` shows the page): allow with the optional claims
ticked, or decline, which the app hears in its protocol (SAML RequestDenied, OIDC access_denied)."""

from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from broker.core import errors, flow
from broker.core.audit import AuditKind
from broker.core.consent import answer
from broker.core.pending_records import LoginAtConsent
from broker.web import audit, login
from broker.web.browser_state import current_sso, take_bound
from broker.web.consent_gate import question_for
from broker.web.replies import DownstreamFailure
from broker.web.services import services

bp = Blueprint("consent", __name__)


@bp.post("/consent/<handle>")
def decide(handle: str) -> Response:
    """The person's answer on the consent page."""
    svc = services()
    now = svc.clock.now()
    stored = take_bound(svc.pending, LoginAtConsent, handle, now, "consent handle")
    waiting = stored.login
    sso = current_sso()
    if sso is None:
        raise DownstreamFailure(errors.LoginStateInvalid(detail="SSO session ended before consent"), waiting)
    if request.form.get("decision") != "allow":
        audit.record(AuditKind.CONSENT_DECLINED, account_id=sso.account_id, downstream=waiting.downstream)
        raise DownstreamFailure(errors.ConsentDeclined(), waiting)
    party = flow.party_for(svc.registry, waiting)
    question = question_for(party, waiting)
    ticked = frozenset(request.form.getlist("claim"))
    policy = svc.registry.snapshot.policy
    svc.consents.record(answer(sso.account_id, party.party_id, question, ticked, policy, now))
    audit.record(AuditKind.CONSENT_GIVEN, account_id=sso.account_id, downstream=party.party_id, reason="page")
    result = flow.answer_from_session(svc.accounts, party, waiting, sso, svc.release_cap(party.party_id),
                                      svc.settings.release_unverified_email, svc.settings.profile,
                                      svc.settings.assurance)
    return login.answer(result, sso, how="consent")
