"""The citizen portal's routes (issue 5); what each page shows and does is ``broker.journeys.portal``.

Signing in to the portal is an ordinary login through the pipeline for the built-in party
``core.model.PORTAL_PARTY``: ``login.answer`` redirects it here instead of answering a protocol, with no
consent step and no claims released. Every state-changing form carries a CSRF token (``app._csrf``); the
sign-in form of the signed-out page carries none and is checked for its origin only, so an anonymous visit
opens no session (issue 15, point 3).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from flask import Blueprint, current_app, request, url_for
from flask_babel import format_date, format_time, to_user_timezone
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from broker.core.model import PORTAL_PARTY, LoginRequest, Protocol
from broker.journeys import logout, portal
from broker.journeys.portal_words import SignedInAs
from broker.web import login
from broker.web.http.devices import describe
from broker.web.renderer import browser, journeys, run

bp = Blueprint("portal", __name__, url_prefix="/account")


@bp.app_context_processor
def _signed_in_as() -> dict[str, Callable[[], SignedInAs | None]]:
    """``portal_who()`` for the portal's menu (``portal_nav.html``, on every portal page, the sign-in security
    pages too): whom this browser is signed in as and with which method (``broker.journeys.portal.who``). A
    function, so pages without the menu read nothing."""
    return {"portal_who": lambda: portal.who(journeys(), browser())}


@bp.app_template_filter("device")
def device(user_agent: str | None) -> str:
    """A session's browser in words ("Firefox on Android"; ``broker.web.http.devices``), never the raw header."""
    named = describe(user_agent)
    if named.browser is None:
        return str(_("Unknown browser"))
    if named.system is None:
        return named.browser
    return str(_("%(browser)s on %(system)s", browser=named.browser, system=named.system))


@bp.app_template_filter("when")
def when(at: datetime) -> str:
    """A moment as the person reads it, in their language and time zone (Flask-Babel): its time when it is
    today ("09:14"), else its date."""
    if to_user_timezone(at).date() == to_user_timezone(journeys().now()).date():
        return str(format_time(at, "short"))
    return str(format_date(at, "medium"))


def _page(template: str) -> Response:
    """A portal page, or the sign-in page when this browser has no SSO session."""
    linking = "linking.start" in current_app.view_functions
    return run(lambda j, b: portal.account_page(j, b, template, linking=linking))


@bp.get("/")
def home() -> Response:
    return _page(portal.HOME)


@bp.post("/sign-in")
def sign_in() -> Response:
    """The portal's own login, through the normal pipeline (an SSO session answers it without going upstream)."""
    return login.begin(LoginRequest(PORTAL_PARTY.party_id, Protocol.PORTAL, url_for("portal.home"), None, None,
                                    frozenset()))


@bp.get("/identities")
def identities() -> Response:
    return _page(portal.IDENTITIES)


@bp.get("/apps")
def apps() -> Response:
    return _page(portal.APPS)


@bp.get("/sessions")
def sso_sessions() -> Response:
    return _page(portal.SESSIONS)


@bp.get("/sign-out")
def sign_out_confirm() -> Response:
    """The "Sign out" page of the portal's menu: "Sign out" (this browser's session and every app it reached) beside
    "Sign out everywhere" (every session of the account), each with a sentence saying what it does (issue 20)."""
    return _page(portal.SIGN_OUT)


@bp.post("/sign-out")
def sign_out() -> Response:
    """Sign out of this browser's session: every app it reached is told, each in its own protocol
    (``broker.journeys.logout.portal_sign_out``)."""
    return run(logout.portal_sign_out)


@bp.post("/sessions/end-all")
def end_all_sessions() -> Response | str:
    """Sign out everywhere: every SSO session of the account ends in the registry, this browser's too. This
    browser's SAML apps are told first (SAML Single Logout, ``broker.journeys.logout``); other browsers' cannot
    be."""
    sso = portal.sign_out_everywhere(journeys(), browser())
    return run(lambda j, b: logout.after_sign_out_everywhere(j, b, sso))


@bp.get("/profile")
def profile() -> Response:
    return _page(portal.PROFILE)


@bp.get("/data.json")
def data() -> Response:
    body = json.dumps(portal.export(journeys(), browser()), indent=2, ensure_ascii=False, default=str)
    return Response(body, mimetype="application/json",
                    headers={"Content-Disposition": 'attachment; filename="my-account.json"',
                             "Cache-Control": "no-store"})


@bp.get("/delete")
def delete_confirm() -> Response:
    return _page(portal.DELETE)


@bp.post("/delete")
def delete() -> Response:
    """Erase the account; this browser's session is emptied and renewed before the page is shown."""
    return run(portal.delete_account)


@bp.get("/consents")
def consents() -> Response:
    return run(portal.consents_page)


@bp.post("/consents/withdraw")
def withdraw() -> Response:
    ref = request.form.get("app", "")
    return run(lambda j, b: portal.withdraw_consent(j, b, ref, url_for("portal.consents")))
