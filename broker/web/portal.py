"""The citizen's own pages (issue 5): the portal home, linked identities, apps used, active SSO sessions with
"sign out everywhere", profile values with their sources, the data download (GDPR Art. 20), account deletion
(Art. 17), and which apps may receive what with withdrawal of consent (Art. 7(3): as easy as giving).

Signing in to the portal is an ordinary login through the pipeline for the built-in party
``core.model.PORTAL_PARTY``: ``login.answer`` redirects it here instead of answering a protocol, with no
consent step and no claims released. Every state-changing form carries a CSRF token (``app._csrf``); the
sign-in form of the signed-out page carries none and is checked for its origin only, so an anonymous visit
opens no session (issue 15, point 3).

A withdrawal is in force at the app's next login (the consent page is shown again) and, for OpenID Connect
apps, at once for tokens: every grant of the citizen at that app is revoked, refresh tokens included.
The pages need the browser's SSO session; without one they offer the portal's own sign-in.
"""

from __future__ import annotations

import hashlib
import json

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.claims import BY_NAME
from broker.core.consent import Consent, ConsentHow
from broker.core.model import PORTAL_PARTY, LoginRequest, Protocol
from broker.core.sessions import SsoSession
from broker.web import login, portal_account, saml_logout
from broker.web.http import audit
from broker.web.http.browser_state import current_sso
from broker.web.renderer import LOGO_CSP
from broker.web.services import services

bp = Blueprint("portal", __name__, url_prefix="/account")


def _app_ref(party_id: str) -> str:
    """How the withdraw form names an app: a digest of its id, so the page never carries the entity id or
    client id (citizens see names, ``core.display``)."""
    return hashlib.sha256(party_id.encode()).hexdigest()[:32]


def _signed_in() -> SsoSession:
    sso = current_sso()
    if sso is None:
        raise errors.LoginStateInvalid("Please sign in to your account again.", detail="portal without an SSO session")
    return sso


def _page(template: str, **context: object) -> str:
    """A portal page, or the sign-in page when this browser has no SSO session."""
    sso = current_sso()
    if sso is None:
        return render_template("portal_sign_in.html")
    return render_template(template, linking="linking.start" in current_app.view_functions,
                           **context, **_data_for(template, sso))


def _data_for(template: str, sso: SsoSession) -> dict[str, object]:
    svc = services()
    account_id = sso.account_id
    if template == "portal_identities.html":
        views = portal_account.identities(svc, account_id)
        linked = {v.identity.upstream for v in views}
        return {"identities": views, "others": [u for u in svc.registry.upstreams() if u.name not in linked],
                "can_unlink": len(views) > 1}
    if template == "portal_apps.html":
        return {"apps": portal_account.apps_used(svc, account_id)}
    if template == "portal_sessions.html":
        active = svc.sso_sessions.active(account_id, svc.clock.now())
        return {"sessions": active, "current": sso.sid,
                "upstream_names": {s.upstream: portal_account.upstream_name(svc, s.upstream) for s in active}}
    if template == "portal_profile.html":
        return {"profile": _profile_rows(account_id)}
    return {}


def _profile_rows(account_id: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for view in portal_account.identities(services(), account_id):
        for name, value in sorted(view.claims.items()):
            claim = BY_NAME.get(name)
            rows.append({"claim": claim.description if claim else name, "value": value,
                         "source": view.upstream_name, "at": view.identity.last_used})
    return rows


@bp.get("/")
def home() -> str:
    return _page("portal_home.html")


@bp.post("/sign-in")
def sign_in() -> Response:
    """The portal's own login, through the normal pipeline (an SSO session answers it without going upstream)."""
    return login.begin(LoginRequest(PORTAL_PARTY.party_id, Protocol.PORTAL, url_for("portal.home"), None, None,
                                    frozenset()))


@bp.get("/identities")
def identities() -> str:
    return _page("portal_identities.html")


@bp.get("/apps")
def apps() -> Response:
    return Response(_page("portal_apps.html"), mimetype="text/html", headers={"Content-Security-Policy": LOGO_CSP})


@bp.get("/sessions")
def sso_sessions() -> str:
    return _page("portal_sessions.html")


@bp.post("/sessions/end-all")
def end_all_sessions() -> Response | str:
    """Sign out everywhere: every SSO session of the account ends in the registry, this browser's too. Grants
    and consents stay (apps keep what they were given until it expires or consent is withdrawn). This browser's
    SAML apps are told first (SAML Single Logout, ``broker.web.saml_logout``); other browsers' cannot be."""
    svc = services()
    sso = _signed_in()
    ended = svc.sso_sessions.end_all(sso.account_id, svc.clock.now())
    session.pop("sso", None)
    audit.record(AuditKind.LOGGED_OUT, account_id=sso.account_id, downstream=PORTAL_PARTY.party_id,
                 reason=f"sign out everywhere; {ended} sessions")
    chained = saml_logout.start_chain(sso, None)
    if chained is not None:
        return chained
    return render_template("portal_done.html", heading="signed_out_everywhere")


@bp.get("/profile")
def profile() -> str:
    return _page("portal_profile.html")


@bp.get("/data.json")
def data() -> Response:
    svc = services()
    sso = _signed_in()
    body = json.dumps(portal_account.export(svc, sso.account_id), indent=2, ensure_ascii=False, default=str)
    return Response(body, mimetype="application/json",
                    headers={"Content-Disposition": 'attachment; filename="my-account.json"',
                             "Cache-Control": "no-store"})


@bp.get("/delete")
def delete_confirm() -> str:
    return _page("portal_delete.html")


@bp.post("/delete")
def delete() -> str:
    svc = services()
    sso = _signed_in()
    party_ids = {c.party_id for c in svc.consents.in_force(sso.account_id)}
    party_ids |= {a.party_id for a in portal_account.apps_used(svc, sso.account_id)}
    portal_account.delete(svc, sso.account_id, sorted(party_ids))
    session.clear()
    regenerate = getattr(current_app.session_interface, "regenerate", None)
    if regenerate is not None:
        regenerate(session)
    return render_template("portal_done.html", heading="deleted")


@bp.get("/consents")
def consents() -> Response | str:
    sso = current_sso()
    if sso is None:
        return render_template("portal_sign_in.html")
    rows = [
        {"ref": _app_ref(c.party_id), "app": portal_account.app_name(services(), c.party_id), "how": c.how.value,
         "at": c.at, "logo": portal_account.app_logo(services(), c.party_id),
         "claims": [BY_NAME[n].description for n in sorted(c.granted) if n in BY_NAME]}
        for c in services().consents.in_force(sso.account_id) if c.how is not ConsentHow.WITHDRAWN
    ]
    return Response(render_template("portal_consents.html", signed_in=True, rows=rows), mimetype="text/html",
                    headers={"Content-Security-Policy": LOGO_CSP})


@bp.post("/consents/withdraw")
def withdraw() -> Response:
    svc = services()
    sso = current_sso()
    if sso is None:
        raise errors.LoginStateInvalid("Please sign in again to change what apps may receive.",
                                       detail="withdrawal without an SSO session")
    ref = request.form.get("app", "")
    party_id = next((c.party_id for c in svc.consents.in_force(sso.account_id) if _app_ref(c.party_id) == ref), "")
    current = svc.consents.current(sso.account_id, party_id) if party_id else None
    if current is None or current.how is ConsentHow.WITHDRAWN:
        raise errors.InvalidRequest("There is no consent to withdraw for this app.",
                                    detail=f"no consent in force for app reference {ref[:64]!r}")
    now = svc.clock.now()
    svc.consents.record(Consent(sso.account_id, party_id, frozenset(), frozenset(), current.policy_version, now,
                                ConsentHow.WITHDRAWN))
    party = svc.registry.downstream(party_id)
    revoked = svc.oidc.store.revoke_for(party_id, sso.account_id, now) \
        if party is None or party.protocol is Protocol.OIDC else 0
    audit.record(AuditKind.CONSENT_WITHDRAWN, account_id=sso.account_id, downstream=party_id,
                 reason=f"portal; {revoked} grants revoked")
    return redirect(url_for("portal.consents"), code=303)
