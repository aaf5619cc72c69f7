"""The OpenID provider's browser endpoints: authorization, consent and RP-initiated logout.

Logout follows OpenID Connect RP-Initiated Logout 1.0: ``post_logout_redirect_uri`` must be registered by the
client named by ``client_id`` or by the ``id_token_hint`` (§3); without a hint that proves the request
comes from the session's own client, the person confirms on a page first (§2, "the OP SHOULD ask the
End-User"), so a cross-site link cannot sign a citizen out unseen.
"""

from __future__ import annotations

from flask import Blueprint, current_app, request
from werkzeug.wrappers import Response

from broker.core import errors
from broker.core.model import Protocol
from broker.core.pending_records import OidcLogout
from broker.core.protocol_ports import POST, REDIRECT, DownstreamMessage
from broker.downstream.oidc.responses import with_query
from broker.journeys import login as journey_login
from broker.journeys import logout as journey
from broker.keys.jwt import verify_own_jwt
from broker.oidc.client import OidcClient
from broker.web import theme
from broker.web.ops.limits import check_downstream
from broker.web.renderer import browser, html, journeys, run
from broker.web.services import services

bp = Blueprint("oidc_provider", __name__)


@bp.route("/oidc/authorize", methods=["GET", "POST"])
def authorize() -> Response:
    """OIDC Core §3.1.2.1: GET and POST (form) are both supported."""
    login_request = journey_login.read_request(journeys(), Protocol.OIDC, _authorization_request())
    check_downstream(current_app, login_request.downstream)
    theme.remember_login_app(login_request.downstream)  # the login's pages wear the app's theme
    return run(lambda j, b: journey_login.begin(j, b, login_request))


def _authorization_request() -> DownstreamMessage:
    if request.method == "GET":
        return DownstreamMessage(REDIRECT, tuple(request.args.items(multi=True)), request.query_string)
    return DownstreamMessage(POST, tuple(request.form.items(multi=True)))


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
def logout() -> Response:
    params = _logout_params()
    client, hint = _logout_client(params)
    target = params.get("post_logout_redirect_uri")
    if target is not None and (client is None or target not in client.post_logout_redirect_uris):
        raise errors.UnregisteredReturnUrl(detail=f"post_logout_redirect_uri {target[:200]!r} not registered")
    done = OidcLogout(target=target, state=params.get("state"), client=client.client_id if client else None)
    hint_sid = str(hint["sid"]) if hint is not None and isinstance(hint.get("sid"), str) else None
    return run(lambda j, b: journey.oidc_logout(j, b, done, _then(done), hint_sid,
                                                client.display_name if client else None,
                                                client.logo_uri if client else None))


@bp.post("/oidc/logout/<handle>")
def logout_confirmed(handle: str) -> Response | str:
    done = journey.take_oidc_logout(journeys(), browser(), handle)
    if request.form.get("decision") != "logout":
        return html("signed_out.html", still_signed_in=True)
    return run(lambda j, b: journey.end_oidc_session(j, b, done, _then(done)))


def _then(done: OidcLogout) -> str | None:
    """Where the browser goes after the logout: the registered ``post_logout_redirect_uri`` with ``state``
    (RP-Initiated Logout 1.0 §3)."""
    if not done.target:
        return None
    return with_query(done.target, [("state", done.state)] if done.state else [])
