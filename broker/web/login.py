"""The login flow across protocols (DESIGN: the flow of one login), as Flask views and helpers.

Downstream blueprints parse a request into a ``LoginRequest`` and call ``begin``; this module checks the
SSO session, picks the upstream (hint, the only one, or the discovery page), sends the browser
upstream, and on return completes the login through ``core.flow`` and answers with ``answer``.

Pending state lives server-side in the pending store under unguessable single-use handles; each
handle is also recorded in this browser's session, so a handle (or an OAuth ``state``) taken from
another browser is refused (login CSRF, RFC 6749 §10.12).
"""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import urlencode

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from broker.core import errors, flow, sessions
from broker.core.audit import AuditKind
from broker.core.model import PORTAL_PARTY, LoginRequest, LoginResult, Protocol, UpstreamIdentity, UpstreamParty
from broker.core.pending_records import (
    LoginAtDiscovery,
    LoginAtOidcUpstream,
    peek_record,
    put_record,
    put_record_with_handle,
    take_record,
)
from broker.core.ports import SsoSessionRecord
from broker.core.sessions import Participant, SsoSession
from broker.downstream import saml_responses
from broker.downstream.saml_responses import PostForm
from broker.upstream.oidc import PendingAuthorization
from broker.web import audit, consent_gate, link_offer, linking, metrics, oidc_answers, request_ids, saml_send
from broker.web.browser_state import bind, current_sso, unbind
from broker.web.replies import DownstreamFailure, post_form_page
from broker.web.services import services

log = logging.getLogger(__name__)
bp = Blueprint("login", __name__)


def begin(login: LoginRequest) -> Response:
    """Steps 2-3: answer from the SSO session, or go upstream (directly or through discovery)."""
    svc = services()
    now = svc.clock.now()
    party = flow.party_for(svc.registry, login)
    login = flow.with_requirements(party, login, svc.settings.assurance)  # the operator's minimum assurance
    sso = current_sso()
    request_ids.start_login()
    log.info("login begin downstream=%s protocol=%s", login.downstream, login.protocol.value)
    if sessions.satisfies(sso, login, party, now, svc.settings.assurance):
        assert sso is not None
        metrics.login_succeeded(sso.upstream, login.downstream, "sso")
        result = flow.answer_from_session(svc.accounts, party, login, sso, svc.release_cap(party.party_id),
                                          svc.settings.release_unverified_email, svc.settings.profile,
                                          svc.settings.assurance)
        return answer(result, sso, how="sso")
    if login.passive:
        raise DownstreamFailure(errors.NoPassive(), login)
    try:
        choice = flow.choose_upstream(svc.registry, party, login)
    except errors.BrokerError as exc:
        raise DownstreamFailure(exc, login) from exc
    if choice.direct is not None:
        # one upstream decided (the request's hint, or the only one allowed): straight there, no stop on the way
        return _start_upstream(login, choice.direct, now)
    handle = put_record(svc.pending, LoginAtDiscovery(login), now + svc.settings.pending_login_lifetime)
    bind(handle)
    return redirect(url_for("login.discover", handle=handle))


def _pending_login(handle: str) -> LoginRequest:
    svc = services()
    now = svc.clock.now()
    stored = peek_record(svc.pending, LoginAtDiscovery, handle, now) if handle in session.get("pending", []) else None
    if stored is None:
        raise errors.LoginStateInvalid(detail="login handle unknown, expired, used or from another browser")
    return stored.login


DISCOVERY_RESULTS = 20
#: logos come from the IdPs' metadata (mdui:Logo) and the app's registration, https or data: only
DISCOVERY_CSP = consent_gate.LOGO_CSP


@bp.get("/login/<handle>")
def discover(handle: str) -> Response:
    """The discovery page: which provider to sign in with. With a federation directory, a search over its
    IdPs' names from metadata (``mdui:DisplayName``, keywords) finds the citizen's own; with an external
    discovery service configured, the browser goes there instead (Identity Provider Discovery Service
    Protocol §2.4: ``entityID``, ``return``, ``returnIDParam``)."""
    login = _pending_login(handle)
    svc = services()
    party = flow.party_for(svc.registry, login)
    back = svc.settings.url(url_for("login.discovered", handle=handle))
    if svc.settings.saml.discovery_url and svc.registry.directory_size():
        query = urlencode({"entityID": svc.settings.saml.sp_entity_id, "return": back, "returnIDParam": "entityID"})
        separator = "&" if "?" in svc.settings.saml.discovery_url else "?"
        return redirect(svc.settings.saml.discovery_url + separator + query)
    query = request.args.get("q", "").strip()[:100]
    candidates = flow.candidate_upstreams(svc.registry, party)
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
    page = render_template("discovery.html", handle=handle, party=party, query=query, found=found,
                           lang=(lang or "en").split("-")[0], searchable=directory_size > DISCOVERY_RESULTS,
                           upstreams=candidates)
    return Response(page, mimetype="text/html", headers={"Content-Security-Policy": DISCOVERY_CSP})


@bp.route("/login/<handle>/idp", methods=["GET", "POST"])
def discovered(handle: str) -> Response:
    """The chosen IdP by entity ID: from the discovery page's search, or back from a discovery service
    (``entityID`` in the query, Identity Provider Discovery Service Protocol §2.4.1)."""
    entity_id = request.values.get("entityID", "").strip()
    if not entity_id:
        login = _pending_login(handle)
        raise DownstreamFailure(errors.UnknownUpstream(detail="the discovery service chose no IdP"), login)
    return _go(handle, entity_id)


@bp.route("/login/<handle>/upstream/<name>", methods=["GET", "POST"])
def go_upstream(handle: str, name: str) -> Response:
    """Step 4 (out): the pending login moves into the upstream's pending authorization."""
    return _go(handle, name)


def _go(handle: str, name: str) -> Response:
    """The discovery page's choice: the pending login (single use) goes to ``name``."""
    svc = services()
    now = svc.clock.now()
    login = _pending_login(handle)
    party = flow.party_for(svc.registry, login)
    try:
        upstream = flow.check_upstream_allowed(svc.registry, party, name)
    except errors.BrokerError as exc:
        raise DownstreamFailure(exc, login) from exc
    if not unbind(handle) or take_record(svc.pending, LoginAtDiscovery, handle, now) is None:
        raise errors.LoginStateInvalid(detail="login handle already used")
    return _start_upstream(login, upstream, now)


@metrics.step("go_upstream")
def _start_upstream(login: LoginRequest, upstream: UpstreamParty, now: datetime) -> Response:
    """Step 4 (out): the login moves into the upstream's pending authorization (or AuthnRequest)."""
    svc = services()
    if upstream.protocol is Protocol.SAML:
        idp = svc.saml_upstream(upstream.name)
        if idp is None:
            raise DownstreamFailure(errors.UnknownUpstream(detail=f"no metadata for SAML IdP {upstream.name!r:.200}"),
                                    login)
        return saml_send.send(login, idp, now)
    adapter = svc.upstream_adapter(upstream.name)
    if adapter is None:
        raise DownstreamFailure(errors.UnknownUpstream(detail=f"upstream {upstream.name!r} has no adapter"), login)
    try:
        url, pending = adapter.start(now, login)
    except errors.BrokerError as exc:
        raise DownstreamFailure(exc, login) from exc
    put_record_with_handle(svc.pending, pending.state, LoginAtOidcUpstream(login=login, upstream=pending.to_json()),
                           now + svc.settings.pending_login_lifetime)
    bind(pending.state)
    return redirect(url)


SAME_SITE_MARK = "_same_site"


@bp.route("/upstream/oidc/<name>/callback", methods=["GET", "POST"])
def oidc_callback(name: str) -> Response:
    """Step 4 (back): verify the upstream's answer, then step 5 and 6.

    The answer comes as a query (GET) or, with ``response_mode=form_post`` (OAuth 2.0 Form Post Response
    Mode; Apple), as a cross-site POST. Browsers send no ``SameSite=Lax`` cookie with a cross-site POST,
    so the broker cannot yet see whose login it is: it answers with its own page that posts the same
    fields to the same address, a same-site POST that carries the cookie.
    """
    svc = services()
    now = svc.clock.now()
    params = request.args.to_dict() if request.method == "GET" else request.form.to_dict()
    state = params.get("state", "")
    if request.method == "POST" and state and state not in session.get("pending", []) \
            and SAME_SITE_MARK not in params:
        fields = tuple(sorted({**params, SAME_SITE_MARK: "1"}.items()))
        # The address comes from configuration, never from the request's Host header.
        target = svc.settings.url(url_for("login.oidc_callback", name=name))
        return post_form_page(PostForm(target, fields), heading=_("Completing your sign-in"))
    params.pop(SAME_SITE_MARK, None)
    if not state or not unbind(state):
        raise errors.LoginStateInvalid(detail="callback state unknown to this browser")
    stored = take_record(svc.pending, LoginAtOidcUpstream, state, now)
    if stored is None and (linked := linking.callback(name, state, params)) is not None:
        return linked  # a link journey from the portal (broker.web.linking), not a login
    if stored is None and (proven := link_offer.callback(name, state, params)) is not None:
        return proven  # the old identity proven for a link offer (broker.web.link_offer)
    if stored is None:
        raise errors.LoginStateInvalid(detail="callback state expired or already used")
    login, pending = stored.login, PendingAuthorization.from_json(stored.upstream)  # LoginStateInvalid if damaged
    adapter = svc.upstream_adapter(name)
    try:
        if pending.upstream != name or adapter is None:
            # IdP mix-up: the answer arrived at another upstream's callback than the one we sent it to.
            raise errors.UpstreamVerificationFailed(detail=f"state for {pending.upstream!r} arrived at {name!r}")
        with metrics.step("upstream_verify"):
            identity = adapter.finish(pending, params, now)
        offered = link_offer.consider(login, identity, now)
    except errors.BrokerError as exc:
        raise DownstreamFailure(exc, login) from exc
    if offered is not None:
        return offered  # a verified address matches another account: offer, never merge (broker.web.link_offer)
    return sign_in(login, identity, now)


def sign_in(login: LoginRequest, identity: UpstreamIdentity, now: datetime,
            upstream_state: tuple[tuple[str, str], ...] = ()) -> Response:
    """Steps 5 and 6 for a verified upstream identity: account, profile, release, a new SSO session, answer.
    ``upstream_state``: what the upstream needs at logout (``SsoSession.upstream_state``)."""
    svc = services()
    try:
        party = flow.party_for(svc.registry, login)
        with metrics.step("complete_login"):
            result = flow.complete_login(svc.accounts, party, login, identity, now,
                                         svc.release_cap(party.party_id), svc.settings.release_unverified_email,
                                         svc.settings.profile, svc.settings.assurance)
    except errors.BrokerError as exc:
        raise DownstreamFailure(exc, login) from exc
    # The session keeps the level actually reached; each downstream is told its own view of it (flow.reported_acr).
    reached = svc.settings.assurance.canonical(identity.acr)
    sso = sessions.new_session(result.account.account_id, result.upstream, reached, result.auth_time, now,
                               svc.settings.sso_session_lifetime, upstream_state)
    svc.sso_sessions.register(SsoSessionRecord(sso.sid, sso.account_id, sso.upstream, now, now, sso.expires_at,
                                               request.user_agent.string))
    # A new browser identity at sign-in: a session id planted before it is worthless after (fixation).
    pending_handles = session.get("pending", [])
    session.clear()
    session["pending"] = pending_handles
    request_ids.keep_login_id()
    regenerate = getattr(current_app.session_interface, "regenerate", None)
    if regenerate is not None:
        regenerate(session)
    log.info("login ok account=%s upstream=%s downstream=%s created=%s", result.account.account_id,
             result.upstream, login.downstream, result.created_account)
    metrics.login_succeeded(result.upstream, login.downstream, "upstream")
    return answer(result, sso, how="upstream")


@metrics.step("answer")
def answer(result: LoginResult, sso: SsoSession, how: str) -> Response:
    """Step 6: the downstream's answer in its protocol; the SSO session records the participant."""
    svc = services()
    svc.sso_sessions.touch(sso.sid, svc.clock.now())
    if result.request.protocol is Protocol.PORTAL:
        # The broker's own portal: it receives no claims, so there is nothing to consent to or release.
        session["sso"] = sso.to_json()
        audit.record(AuditKind.LOGIN_SUCCEEDED, account_id=result.account.account_id, upstream=result.upstream,
                     downstream=PORTAL_PARTY.party_id, reason=how)
        return redirect(url_for("portal.home"), code=303)
    gated = consent_gate.gate(result, sso)
    if isinstance(gated, Response):
        return gated  # the consent page; the answer continues in broker.web.consent
    result = gated.result
    login = result.request
    if login.protocol is Protocol.OIDC:
        return oidc_answers.answer(result, sso, how, gated.claims)
    catalog = svc.registry.snapshot.saml
    upstream = svc.registry.upstream(result.upstream)
    form, nid = saml_responses.session_answer(svc.idp, catalog, result, upstream.issuer if upstream else None, sso.sid)
    joined = Participant(login.downstream, Protocol.SAML, nid.value, nid.format)
    session["sso"] = sso.with_participant(joined).to_json()
    svc.sso_sessions.join(sso.sid, joined, svc.clock.now())
    audit.record(AuditKind.LOGIN_SUCCEEDED, account_id=result.account.account_id, upstream=result.upstream,
                 downstream=login.downstream, reason=how)
    return post_form_page(form)
