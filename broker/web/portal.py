"""The citizen's own pages: which apps may receive what, and withdrawing that consent (GDPR Art. 7(3):
withdrawing must be as easy as giving).

A withdrawal is in force at the app's next login (the consent page is shown again) and, for OpenID Connect
apps, at once for tokens: every grant of the citizen at that app is revoked, refresh tokens included.
The pages need the browser's SSO session; a person without one is asked to sign in through an app first.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.claims import BY_NAME
from broker.core.consent import Consent, ConsentHow
from broker.core.model import Protocol
from broker.web import audit
from broker.web.browser_state import current_sso
from broker.web.services import services

bp = Blueprint("portal", __name__, url_prefix="/account")


def _app_name(party_id: str) -> str:
    party = services().registry.downstream(party_id)
    return party.display_name if party is not None else party_id


@bp.get("/consents")
def consents() -> str:
    sso = current_sso()
    if sso is None:
        return render_template("portal_consents.html", signed_in=False, rows=[])
    rows = [
        {"party_id": c.party_id, "app": _app_name(c.party_id), "how": c.how.value, "at": c.at,
         "claims": [BY_NAME[n].description for n in sorted(c.granted) if n in BY_NAME]}
        for c in services().consents.in_force(sso.account_id) if c.how is not ConsentHow.WITHDRAWN
    ]
    return render_template("portal_consents.html", signed_in=True, rows=rows)


@bp.post("/consents/withdraw")
def withdraw() -> Response:
    svc = services()
    sso = current_sso()
    if sso is None:
        raise errors.LoginStateInvalid("Please sign in again to change what apps may receive.",
                                       detail="withdrawal without an SSO session")
    party_id = request.form.get("party_id", "")
    current = svc.consents.current(sso.account_id, party_id)
    if current is None or current.how is ConsentHow.WITHDRAWN:
        raise errors.InvalidRequest("There is no consent to withdraw for this app.",
                                    detail=f"no consent in force for {party_id[:200]!r}")
    now = svc.clock.now()
    svc.consents.record(Consent(sso.account_id, party_id, frozenset(), frozenset(), current.policy_version, now,
                                ConsentHow.WITHDRAWN))
    party = svc.registry.downstream(party_id)
    revoked = svc.oidc.store.revoke_for(party_id, sso.account_id, now) \
        if party is None or party.protocol is Protocol.OIDC else 0
    audit.record(AuditKind.CONSENT_WITHDRAWN, account_id=sso.account_id, downstream=party_id,
                 reason=f"portal; {revoked} grants revoked")
    return redirect(url_for("portal.consents"), code=303)
