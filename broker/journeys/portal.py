"""The citizen's own pages (issue 5): the portal home, linked identities, apps used, active SSO sessions with
"sign out everywhere", profile values with their sources, the data download (GDPR Art. 20), account deletion
(Art. 17), and which apps may receive what with withdrawal of consent (Art. 7(3): as easy as giving).

The pages need the browser's SSO session; without one they offer the portal's own sign-in (an ordinary login
for ``core.model.PORTAL_PARTY``). A withdrawal is in force at the app's next login (the consent page is shown
again) and, for OpenID Connect apps, at once for tokens: every grant of the citizen at that app is revoked,
refresh tokens included. What the broker holds is gathered in ``broker.journeys.account_data``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.claims import BY_NAME
from broker.core.consent import Consent, ConsentHow
from broker.core.model import PORTAL_PARTY
from broker.core.outcomes import Page, Redirect
from broker.core.sessions import SsoSession
from broker.core.texts import N_
from broker.journeys import account_data, session_end, ways_in
from broker.journeys.context import Browser, Journeys
from broker.journeys.portal_words import SENTENCES, SignedInAs, label, shown_value, signed_in_as

SIGN_IN = "portal_sign_in.html"
HOME = "portal_home.html"
IDENTITIES = "portal_identities.html"
APPS = "portal_apps.html"
SESSIONS = "portal_sessions.html"
PROFILE = "portal_profile.html"
DELETE = "portal_delete.html"
CONSENTS = "portal_consents.html"
DONE = "portal_done.html"
SIGN_OUT = "portal_sign_out.html"
#: pages that show apps' logos (``Page.shows_logos``), their signed-out version too
WITH_LOGOS = frozenset({APPS})


def app_ref(party_id: str) -> str:
    """How the withdraw form names an app: a digest of its id, so the page never carries the entity id or
    client id (citizens see names, ``core.display``)."""
    return hashlib.sha256(party_id.encode()).hexdigest()[:32]


def _signed_in(browser: Browser) -> SsoSession:
    sso = browser.sso()
    if sso is None:
        raise errors.LoginStateInvalid(N_("Please sign in to your account again."),
                                       detail="portal without an SSO session")
    return sso


def who(j: Journeys, browser: Browser) -> SignedInAs | None:
    """Whom every portal page says this browser is signed in as, and with which method (issue 20); None without
    an SSO session (the page then offers the sign-in)."""
    sso = browser.sso()
    return signed_in_as(j, sso) if sso is not None else None


def account_page(j: Journeys, browser: Browser, template: str, *, linking: bool) -> Page:
    """A portal page (one of the templates above), or the sign-in page when this browser has no SSO session.
    ``linking``: whether sign-in methods can be added and removed (the linking pages are served)."""
    logos = template in WITH_LOGOS
    sso = browser.sso()
    if sso is None:
        return Page(SIGN_IN, shows_logos=logos)
    gather = _DATA.get(template)
    data = gather(j, sso) if gather is not None else {}
    return Page(template, {"linking": linking, **data}, shows_logos=logos)


def _identities(j: Journeys, sso: SsoSession) -> dict[str, Any]:
    views = account_data.identities(j, sso.account_id)
    linked = {v.identity.upstream for v in views}
    removable = [ways_in.may_unlink(j, sso.account_id, v.identity.issuer, v.identity.subject) for v in views]
    return {"identities": views, "others": [u for u in j.registry.upstreams() if u.name not in linked],
            "can_unlink": any(removable), "removable": removable}


def _apps(j: Journeys, sso: SsoSession) -> dict[str, Any]:
    return {"apps": account_data.apps_used(j, sso.account_id)}


def _sessions(j: Journeys, sso: SsoSession) -> dict[str, Any]:
    active = j.sso_sessions.active(sso.account_id, j.now())
    return {"sessions": active, "current": sso.sid,
            "upstream_names": {s.upstream: account_data.upstream_name(j, s.upstream) for s in active}}


def _profile(j: Journeys, sso: SsoSession) -> dict[str, Any]:
    return {"profile": profile_rows(j, sso.account_id)}


_DATA: dict[str, Callable[[Journeys, SsoSession], dict[str, Any]]] = {
    IDENTITIES: _identities, APPS: _apps, SESSIONS: _sessions, PROFILE: _profile,
}


def profile_rows(j: Journeys, account_id: str) -> list[dict[str, object]]:
    """Each value every linked identity last asserted, with its source (the provider's display name) and when it
    was asserted. A yes/no claim is a sentence about the provider (``portal_words.SENTENCES``: "Your e-mail
    address was confirmed by Google"), or left out when its value means nothing to a citizen."""
    rows: list[dict[str, object]] = []
    for view in account_data.identities(j, account_id):
        for name, value in sorted(view.claims.items()):
            row: dict[str, object] = {"source": view.upstream_name, "at": view.identity.last_used}
            if name in SENTENCES and isinstance(value, bool):
                sentence = SENTENCES[name][value]
                if sentence is not None:
                    rows.append({**row, "sentence": sentence})
                continue
            rows.append({**row, "claim": label(name), "value": shown_value(value)})
    return rows


def consents_page(j: Journeys, browser: Browser) -> Page:
    """What each app may receive, with a withdraw form for the consents the citizen gave on the consent page."""
    sso = browser.sso()
    if sso is None:
        return Page(SIGN_IN)
    rows = [
        {"ref": app_ref(c.party_id), "app": account_data.app_name(j, c.party_id), "how": c.how.value,
         "at": c.at, "logo": account_data.app_logo(j, c.party_id),
         "claims": [label(n) for n in sorted(c.granted) if n in BY_NAME]}
        for c in j.consents.in_force(sso.account_id) if c.how is not ConsentHow.WITHDRAWN
    ]
    return Page(CONSENTS, {"signed_in": True, "rows": rows}, shows_logos=True)


def withdraw_consent(j: Journeys, browser: Browser, ref: str, back: str) -> Redirect:
    """Withdraw the consent in force for the app ``ref`` (``app_ref``) names and revoke the citizen's OpenID
    grants at it; then back to ``back`` (the consents page)."""
    sso = browser.sso()
    if sso is None:
        raise errors.LoginStateInvalid(N_("Please sign in again to change what apps may receive."),
                                       detail="withdrawal without an SSO session")
    party_id = next((c.party_id for c in j.consents.in_force(sso.account_id) if app_ref(c.party_id) == ref), "")
    current = j.consents.current(sso.account_id, party_id) if party_id else None
    if current is None or current.how is ConsentHow.WITHDRAWN:
        raise errors.InvalidRequest(N_("There is no consent to withdraw for this app."),
                                    detail=f"no consent in force for app reference {ref[:64]!r}")
    now = j.now()
    j.consents.record(Consent(sso.account_id, party_id, frozenset(), frozenset(), current.policy_version, now,
                              ConsentHow.WITHDRAWN))
    revoked = j.grants.revoke_for(party_id, sso.account_id, now) if account_data.revokes_grants(j, party_id) else 0
    j.audit(AuditKind.CONSENT_WITHDRAWN, account_id=sso.account_id, downstream=party_id,
            reason=f"portal; {revoked} grants revoked")
    return Redirect(back, status=303)


def sign_out_everywhere(j: Journeys, browser: Browser) -> SsoSession:
    """End every SSO session of the account in the registry, this browser's too, and tell the other sessions'
    OpenID apps (back channel; their grants revoked); the session that asked, for its own apps to be told
    (``broker.journeys.logout.after_sign_out_everywhere``). Consents stay."""
    sso = _signed_in(browser)
    now = j.now()
    others = [r.sid for r in j.sso_sessions.active(sso.account_id, now) if r.sid != sso.sid]
    ended = j.sso_sessions.end_all(sso.account_id, now)
    j.audit(AuditKind.LOGGED_OUT, account_id=sso.account_id, downstream=PORTAL_PARTY.party_id,
            reason=f"sign out everywhere; {ended} sessions")
    session_end.ended_all(j, sso.account_id, others, now)  # this browser's: ``logout.after_sign_out_everywhere``
    return sso


def export(j: Journeys, browser: Browser) -> dict[str, Any]:
    """The data download: everything the broker holds about the signed-in account (``account_data.export``)."""
    return account_data.export(j, _signed_in(browser).account_id)


def delete_account(j: Journeys, browser: Browser) -> Page:
    """Erase the signed-in account, revoking its grants at every app it consented to or signed in to; the
    browser's session is emptied and renewed before the page is shown."""
    sso = _signed_in(browser)
    party_ids = {c.party_id for c in j.consents.in_force(sso.account_id)}
    party_ids |= {a.party_id for a in account_data.apps_used(j, sso.account_id)}
    account_data.delete(j, sso.account_id, sorted(party_ids))
    browser.sign_out()
    return Page(DONE, {"heading": "deleted"})
