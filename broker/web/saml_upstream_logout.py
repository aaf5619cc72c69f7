"""Logging out at the upstream SAML IdP a session came from: the ``upstream_logout`` step of the single logout
chain (``broker.web.saml_logout``). The IdP's LogoutResponse comes back to ``broker.web.saml_sp_slo``, which
resumes the chain."""

from __future__ import annotations

import secrets

from werkzeug.wrappers import Response

from broker.core.pending_records import SamlUpstreamLogout, put_record_with_handle
from broker.core.sessions import SsoSession
from broker.upstream import saml_slo
from broker.web.http.browser_state import bind
from broker.web.renderer import outgoing_page
from broker.web.services import services


def send_logout(sso: SsoSession, return_url: str) -> Response | None:
    """A signed LogoutRequest to the session's SAML IdP, or None when the session did not come from one (or the
    IdP publishes no SingleLogoutService, or its metadata is gone)."""
    svc = services()
    state = dict(sso.upstream_state)
    idp = svc.saml_upstream(sso.upstream) if state.get("name_id") else None
    if idp is None:
        return None
    now = svc.clock.now()
    relay_state = secrets.token_urlsafe(32)
    sent = saml_slo.logout_request(svc.saml_sp, idp, state, relay_state, now)
    if sent is None:
        return None
    outgoing, request_id = sent
    put_record_with_handle(svc.pending, relay_state, SamlUpstreamLogout(request_id=request_id,
                           entity_id=idp.entity_id, return_url=return_url), now + saml_slo.MAX_AGE)
    bind(relay_state)
    return outgoing_page(outgoing)
