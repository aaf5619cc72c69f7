"""The OpenID provider's browser endpoints: authorization, consent and RP-initiated logout.

Logout follows OpenID Connect RP-Initiated Logout 1.0: ``post_logout_redirect_uri`` must be registered by the
client named by ``client_id`` or by the ``id_token_hint`` (§3); without a hint that proves the request
comes from the session's own client, the person confirms on a page first (§2, "the OP SHOULD ask the
End-User"), so a cross-site link cannot sign a citizen out unseen.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, redirect, render_template, request
from werkzeug.wrappers import Response

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.pending_records import OidcLogout, put_record
from broker.downstream.oidc.authorize import AuthorizeRejected, parse_authorization_request
from broker.downstream.oidc.responses import with_query
from broker.journeys.context import DownstreamFailure
from broker.keys.jwt import verify_own_jwt
from broker.oidc.client import OidcClient
from broker.web import login, saml_logout
from broker.web.http import audit
from broker.web.http.browser_state import bind, current_sso, new_browser_session, take_bound
from broker.web.ops import metrics
from broker.web.ops.limits import check_downstream
from broker.web.renderer import LOGO_CSP
from broker.web.services import services

bp = Blueprint("oidc_provider", __name__)


@bp.route("/oidc/authorize", methods=["GET", "POST"])
def authorize() -> Response:
    """OIDC Core §3.1.2.1: GET and POST (form) are both supported."""
    svc = services()
    pairs = request.args.items(multi=True) if request.method == "GET" else request.form.items(multi=True)
    try:
        with metrics.step("parse_request"):
            login_request = parse_authorization_request(pairs, svc.registry.oidc_client)
    except AuthorizeRejected as rejected:
        if rejected.reply is not None:
            raise DownstreamFailure(rejected.error, rejected.reply) from rejected
        raise rejected.error from rejected
    check_downstream(current_app, login_request.downstream)
    return login.begin(login_request)


def _logout_params() -> dict[str, str]:
    source = request.args if request.method == "GET" else request.form
    return {k: source[k] for k in ("id_token_hint", "client_id", "post_logout_redirect_uri", "state") if k in source}


def _logout_client(params: dict[str, str]) -> tuple[OidcClient | None, dict[str, object] | None]:
    svc = services()
    hint: dict[str, object] | None = None
    if "id_token_hint" in params:
        try:
            hint = verify_own_jwt(params["id_token_hint"], svc.keys.jwt_keys)
        except ValueError as exc:
            raise errors.InvalidRequest(detail=f"id_token_hint not valid: {exc}") from exc
        if hint.get("iss") != svc.settings.base_url:
            raise errors.InvalidRequest(detail="id_token_hint from another issuer")
    client_id = params.get("client_id") or (str(hint["aud"]) if hint and isinstance(hint.get("aud"), str) else None)
    if hint is not None and client_id != hint.get("aud"):
        raise errors.InvalidRequest(detail="client_id does not match the id_token_hint's audience")
    client = svc.registry.oidc_client(client_id) if client_id else None
    if client_id and client is None:
        raise errors.UnknownParty(detail=f"logout for unknown client {client_id[:80]!r}")
    return client, hint


@bp.route("/oidc/logout", methods=["GET", "POST"])
def logout() -> Response | str:
    svc = services()
    params = _logout_params()
    client, hint = _logout_client(params)
    target = params.get("post_logout_redirect_uri")
    if target is not None and (client is None or target not in client.post_logout_redirect_uris):
        raise errors.UnregisteredReturnUrl(detail=f"post_logout_redirect_uri {target[:200]!r} not registered")
    done = OidcLogout(target=target, state=params.get("state"), client=client.client_id if client else None)
    sso = current_sso()
    if sso is None:
        return _after_logout(done)
    if hint is not None and hint.get("sid") == sso.sid:
        return _end_session(done)
    handle = put_record(svc.pending, done, svc.clock.now() + timedelta(minutes=10))
    bind(handle)
    page = render_template("logout_confirm.html", handle=handle, app_name=client.display_name if client else None,
                           app_logo=client.logo_uri if client else None)
    return Response(page, mimetype="text/html", headers={"Content-Security-Policy": LOGO_CSP})


@bp.post("/oidc/logout/<handle>")
def logout_confirmed(handle: str) -> Response | str:
    svc = services()
    done = take_bound(svc.pending, OidcLogout, handle, svc.clock.now(), "logout handle")
    if request.form.get("decision") != "logout":
        return render_template("signed_out.html", still_signed_in=True)
    return _end_session(done)


def _end_session(done: OidcLogout) -> Response | str:
    sso = current_sso()
    new_browser_session()
    if sso is not None:
        svc = services()
        svc.sso_sessions.end(sso.sid, svc.clock.now())  # gone from the portal's list of active sessions too
        audit.record(AuditKind.LOGGED_OUT, account_id=sso.account_id, downstream=done.client)
        # SAML Single Logout of the session's SAML apps first (broker.web.saml_logout), then the same answer
        target, state = done.target, done.state
        then = with_query(target, [("state", state)] if state else []) if target else None
        chained = saml_logout.start_chain(sso, then)
        if chained is not None:
            return chained
    return _after_logout(done)


def _after_logout(done: OidcLogout) -> Response | str:
    target = done.target
    if not target:
        return render_template("signed_out.html", still_signed_in=False)
    fields = [("state", done.state)] if done.state else []
    return redirect(with_query(target, fields), code=303)
