"""The login's own pages and the OpenID upstreams' callback, as HTTP (the journey: ``broker.journeys.login``).

Downstream blueprints parse a request into a ``LoginRequest`` and call ``begin``; the journey answers from the
SSO session, sends the browser upstream, or to the discovery page here. Upstream answers come back to
``oidc_callback`` (OpenID Connect and OAuth 2.0) or ``broker.web.saml_sp.acs`` (SAML), which hand them to
``broker.journeys.upstream_answers``.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, redirect, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from broker.core import errors, flow
from broker.core.model import LoginRequest, Protocol
from broker.core.outcomes import PostForm
from broker.journeys import login, passkey_signup, passwordless
from broker.journeys.context import DownstreamFailure
from broker.journeys.upstream_answers import upstream_answer
from broker.web import theme
from broker.web.http import way_back
from broker.web.http.last_upstream import first_last_used, remember
from broker.web.renderer import LOGO_CSP, browser, html, journeys, post_form_page, run
from broker.web.services import services

bp = Blueprint("login", __name__)


def begin(login_request: LoginRequest) -> Response:
    """A downstream's parsed request: the login journey from its start."""
    theme.remember_login_app(login_request.downstream)  # the portal's own: no app's theme is left over
    return run(lambda j, b: login.begin(j, b, login_request))


DISCOVERY_RESULTS = 20
#: logos come from the IdPs' metadata (mdui:Logo) and the app's registration, https or data: only
DISCOVERY_CSP = LOGO_CSP


@bp.get("/login/<handle>")
def discover(handle: str) -> Response:
    """The discovery page: which provider to sign in with. With a federation directory, a search over its
    IdPs' names from metadata (``mdui:DisplayName``, keywords) finds the citizen's own; with an external
    discovery service configured, the browser goes there instead (Identity Provider Discovery Service
    Protocol §2.4: ``entityID``, ``return``, ``returnIDParam``)."""
    login_request = login.waiting_login(journeys(), browser(), handle)
    svc = services()
    party = flow.party_for(svc.registry, login_request)
    back = svc.settings.url(url_for("login.discovered", handle=handle))
    if svc.settings.saml.discovery_url and svc.registry.directory_size():
        query = urlencode({"entityID": svc.settings.saml.sp_entity_id, "return": back, "returnIDParam": "entityID"})
        separator = "&" if "?" in svc.settings.saml.discovery_url else "?"
        return redirect(svc.settings.saml.discovery_url + separator + query)
    query = request.args.get("q", "").strip()[:100]
    # the citizen's last choice on this device first (``broker.web.http.last_upstream``)
    candidates, last_used = first_last_used(flow.candidate_upstreams(svc.registry, party))
    found = []
    directory_size = svc.registry.directory_size()
    if svc.idp_directory is not None and (query or directory_size <= DISCOVERY_RESULTS):
        # a small directory is listed whole (by display name); a federation is searched
        listed = (svc.idp_directory.search(query, DISCOVERY_RESULTS) if query
                  else svc.idp_directory.names_page(0, DISCOVERY_RESULTS))
        shown = {u.issuer for u in candidates}  # registered ones have their own button above
        found = [idp for idp in listed if idp.entity_id not in shown
                 and (not party.allowed_upstreams or idp.entity_id in party.allowed_upstreams)]
    if svc.idp_directory is not None and party.allowed_upstreams and not query:
        # the directory's IdPs the party names by entity id: offered whatever the directory's size
        shown = {u.issuer for u in candidates} | {idp.entity_id for idp in found}
        found += [idp for key in party.allowed_upstreams if key not in shown
                  and (idp := svc.idp_directory.get(key)) is not None]
    lang = request.accept_languages.best
    page = html("discovery.html", handle=handle, party=party, query=query, found=found,
                lang=(lang or "en").split("-")[0], searchable=directory_size > DISCOVERY_RESULTS,
                upstreams=candidates, last_used=last_used, passkey=passwordless.offered(journeys(), party),
                passkey_sign_up=passkey_signup.offered(journeys(), party))
    return Response(page, mimetype="text/html", headers={"Content-Security-Policy": DISCOVERY_CSP})


@bp.route("/login/<handle>/idp", methods=["GET", "POST"])
def discovered(handle: str) -> Response:
    """The chosen IdP by entity ID: from the discovery page's search, or back from a discovery service
    (``entityID`` in the query, Identity Provider Discovery Service Protocol §2.4.1)."""
    entity_id = request.values.get("entityID", "").strip()
    if not entity_id:
        waiting = login.waiting_login(journeys(), browser(), handle)
        raise DownstreamFailure(errors.UnknownUpstream(detail="the discovery service chose no IdP"), waiting)
    return run(lambda j, b: login.choose(j, b, handle, entity_id))


@bp.route("/login/<handle>/upstream/<name>", methods=["GET", "POST"])
def go_upstream(handle: str, name: str) -> Response:
    """Step 4 (out): the waiting login goes to the upstream the person chose, which this device remembers."""
    return remember(run(lambda j, b: login.choose(j, b, handle, name)), name)


@bp.post("/login/<handle>/passkey")
def passkey_begin(handle: str) -> Response:
    """The discovery page's "sign in with a passkey": the page that asks the browser for one."""
    return run(lambda j, b: passwordless.begin(j, b, handle))


@bp.post("/login/passkey/<handle>")
def passkey_finish(handle: str) -> Response:
    """The browser's passkey assertion (WebAuthn JSON, posted by passkey.js)."""
    credential = request.form.get("credential", "")[:16384]
    return run(lambda j, b: passwordless.finish(j, b, handle, credential))


@bp.post("/login/<handle>/passkey/new")
def passkey_sign_up_begin(handle: str) -> Response:
    """The discovery page's "create an account with a passkey": the page that explains it and asks the browser
    to create one (``broker.journeys.passkey_signup``)."""
    return run(lambda j, b: passkey_signup.begin(j, b, handle))


@bp.post("/login/passkey/new/<handle>")
def passkey_sign_up_finish(handle: str) -> Response:
    """The browser's registration response (WebAuthn JSON, posted by passkey.js) and the display name given."""
    credential = request.form.get("credential", "")[:65536]
    name = request.form.get("name", "")[:200]
    return run(lambda j, b: passkey_signup.finish(j, b, handle, credential, name))


SAME_SITE_MARK = "_same_site"


@bp.route("/upstream/oidc/<name>/callback", methods=["GET", "POST"])
def oidc_callback(name: str) -> Response:
    """Step 4 (back) from an OpenID provider or OAuth 2.0 upstream (``broker.journeys.upstream_answers``).

    The answer comes as a query (GET) or, with ``response_mode=form_post`` (OAuth 2.0 Form Post Response
    Mode; Apple), as a cross-site POST. Browsers send no ``SameSite=Lax`` cookie with a cross-site POST,
    so the broker cannot yet see whose login it is: it answers with its own page that posts the same
    fields to the same address, a same-site POST that carries the cookie.
    """
    svc = services()
    params = request.args.to_dict() if request.method == "GET" else request.form.to_dict()
    state = params.get("state", "")
    if request.method == "POST" and state and state not in session.get("pending", []) \
            and SAME_SITE_MARK not in params:
        fields = tuple(sorted({**params, SAME_SITE_MARK: "1"}.items()))
        # The address comes from configuration, never from the request's Host header.
        target = svc.settings.url(url_for("login.oidc_callback", name=name))
        return post_form_page(PostForm(target, fields), heading=_("Completing your sign-in"))
    params.pop(SAME_SITE_MARK, None)
    # a replay (Back to this address) is refused, but its page leads back to the app (``broker.web.http.way_back``)
    return way_back.through(state, lambda: run(lambda j, b: upstream_answer(j, b, Protocol.OIDC, state, params,
                                                                           arrived_at=name)))
