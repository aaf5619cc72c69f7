"""Step 6 for OpenID Connect clients: the authorization response, and errors sent back to the client.

Called by ``login.answer`` and ``replies.reply_to_downstream`` when the login came from an OIDC client.
"""

from __future__ import annotations

from flask import redirect, session
from werkzeug.wrappers import Response

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.model import LoginRequest, LoginResult, Protocol
from broker.core.sessions import Participant, SsoSession
from broker.downstream.oidc import responses
from broker.downstream.saml_responses import PostForm
from broker.oidc.client import OidcClient
from broker.web import audit
from broker.web.post_form import post_form_page
from broker.web.services import services


def _deliver(reply: str | PostForm) -> Response:
    if isinstance(reply, PostForm):
        return post_form_page(reply)
    return redirect(reply, code=303)


def client_for(login: LoginRequest) -> OidcClient:
    client = services().registry.oidc_client(login.downstream)
    if client is None or login.return_to not in client.redirect_uris:
        raise errors.UnknownParty(detail=f"client {login.downstream!r} or its redirect URI is no longer registered")
    return client


def answer(result: LoginResult, sso: SsoSession, how: str, claims: frozenset[str]) -> Response:
    """The code goes back to the client; the SSO session records the client as a participant. ``claims`` are the
    names the grant may release (``consent_gate``: request, registration, policy and consent)."""
    svc = services()
    login = result.request
    client = client_for(login)
    code = svc.oidc.authorization_code(result, claims, sso.sid, svc.clock.now())
    subject = svc.oidc.subject(client, result.account.account_id)
    joined = Participant(login.downstream, Protocol.OIDC, subject)
    session["sso"] = sso.with_participant(joined).to_json()
    svc.sso_sessions.join(sso.sid, joined, svc.clock.now())
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
