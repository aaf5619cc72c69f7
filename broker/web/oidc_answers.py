"""Step 6 for OpenID Connect clients: the authorization response, and errors sent back to the client.

Called by ``login.answer`` and ``replies.reply_to_downstream`` when the login came from an OIDC client.
"""

from __future__ import annotations

from dataclasses import replace

from flask import redirect, render_template, session
from werkzeug.wrappers import Response

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.claims import BY_NAME
from broker.core.model import LoginRequest, LoginResult, Protocol
from broker.core.release import releasable_claims
from broker.core.sessions import Participant, SsoSession
from broker.downstream.oidc import responses
from broker.downstream.saml_responses import PostForm
from broker.oidc.client import OidcClient
from broker.web import audit
from broker.web.browser_state import bind
from broker.web.post_form import post_form_page
from broker.web.services import services

KIND_CONSENT = "oidc-consent"


def _deliver(reply: str | PostForm) -> Response:
    if isinstance(reply, PostForm):
        return post_form_page(reply)
    return redirect(reply, code=303)


def client_for(login: LoginRequest) -> OidcClient:
    client = services().registry.oidc_client(login.downstream)
    if client is None or login.return_to not in client.redirect_uris:
        raise errors.UnknownParty(detail=f"client {login.downstream!r} or its redirect URI is no longer registered")
    return client


def answer(result: LoginResult, sso: SsoSession, how: str) -> Response:
    """The code goes back to the client; the SSO session records the client as a participant.

    With ``prompt=consent`` (OIDC Core §3.1.2.1) the person first sees what the app will receive and
    decides; the login waits server-side, bound to this browser, and continues in ``consent``.
    """
    svc = services()
    login = result.request
    client = client_for(login)
    claims = releasable_claims(client.party(), login, svc.settings.release_claims)
    prompts = login.state("prompt").split(" ")
    if "consent" in prompts:
        session["sso"] = sso.to_json()
        rest = " ".join(p for p in prompts if p != "consent")
        waiting = replace(login, protocol_state=tuple((k, rest if k == "prompt" else v)
                                                      for k, v in login.protocol_state))
        handle = svc.pending.put(KIND_CONSENT, waiting.to_json(), svc.clock.now() + svc.settings.pending_login_lifetime)
        bind(handle)
        html = render_template("consent.html", handle=handle, app_name=client.client_name,
                               claims=[BY_NAME[c].description for c in sorted(claims) if c in BY_NAME])
        return Response(html, mimetype="text/html")
    code = svc.oidc.authorization_code(result, claims, sso.sid, svc.clock.now())
    subject = svc.oidc.subject(client, result.account.account_id)
    session["sso"] = sso.with_participant(Participant(login.downstream, Protocol.OIDC, subject)).to_json()
    audit.record(AuditKind.LOGIN_SUCCEEDED, account_id=result.account.account_id, upstream=result.upstream,
                 downstream=login.downstream, reason=how)
    return _deliver(responses.success(login, svc.settings.base_url, code))


def failure(login: LoginRequest, error: errors.BrokerError) -> Response | None:
    """The error at the client's redirect URI, or None when that URI is no longer registered (a page then)."""
    try:
        client_for(login)
    except errors.UnknownParty:
        return None
    return _deliver(responses.failure(login, services().settings.base_url, error))
