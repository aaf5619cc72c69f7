"""The request id and the login id of each HTTP request (``broker.logging_setup`` puts both on every log line).

- ``X-Request-ID``: taken from the incoming header only when it matches ``REQUEST_ID_PATTERN`` (a proxy's id),
  else a new one; sent back in the response's ``X-Request-ID`` and shown as the support reference of an
  error page (``broker.web.replies.support_reference``).
- The login id follows one login across the browser's separate requests: made by ``start_login`` when a
  downstream's request begins a login (``broker.web.login.begin``), kept in the browser's session, and read
  back at the start of each later request (go upstream, callback or ACS, consent, answer). A browser runs one
  login at a time as far as the id is concerned: a second tab's login takes over the id from there on.
"""

from __future__ import annotations

from flask import Flask, request, session
from werkzeug.wrappers import Response

from broker.logging_setup import accepted_request_id, login_id, new_id, request_id

HEADER = "X-Request-ID"
SESSION_KEY = "login_id"
#: where a downstream's request enters: a login id found in the session there belongs to an earlier login
ENTRY_ENDPOINTS = frozenset({"saml_idp.sso_redirect", "saml_idp.sso_post", "oidc_provider.authorize"})


def _before() -> None:
    request_id.set(accepted_request_id(request.headers.get(HEADER)))
    current = "" if request.endpoint in ENTRY_ENDPOINTS else session.get(SESSION_KEY, "")
    login_id.set(current if isinstance(current, str) else "")


def _after(response: Response) -> Response:
    if request_id.get():
        response.headers[HEADER] = request_id.get()
    return response


def init_request_ids(app: Flask) -> None:
    app.before_request(_before)
    app.after_request(_after)


def start_login() -> str:
    """A new login id for the login this request begins, in the context and the browser's session."""
    value = new_id()
    login_id.set(value)
    session[SESSION_KEY] = value
    return value


def keep_login_id() -> None:
    """Put the current login id back into a session that was just cleared (a new browser identity at sign-in)."""
    if login_id.get():
        session[SESSION_KEY] = login_id.get()
