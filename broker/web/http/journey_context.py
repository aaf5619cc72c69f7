"""The journeys' view of one HTTP request (``broker.journeys.context``): this browser's server-side session,
the metrics and login ids of the request, and the broker's own addresses."""

from __future__ import annotations

import secrets
from contextlib import AbstractContextManager

from flask import current_app, request, session, url_for

from broker.config.settings import Settings
from broker.core.sessions import SsoSession
from broker.logging_setup import request_id
from broker.web import locale, theme
from broker.web.http import device_cookie
from broker.web.http.browser_state import bind, current_sso, new_browser_session, unbind
from broker.web.ops import metrics, request_ids

#: the browser's session key of its single logout in progress (a LogoutResponse may come back without RelayState)
LOGOUT_KEY = "saml_logout"


class FlaskBrowser:
    """The browser of the current request (``Browser``): its handles and SSO session in the Flask session."""

    @property
    def user_agent(self) -> str:
        return request.user_agent.string

    @property
    def address(self) -> str:
        return request.remote_addr or ""

    def device_id(self) -> str:
        return device_cookie.device_id()

    def remember_device(self) -> None:
        device_cookie.remember()

    def bind(self, handle: str) -> None:
        bind(handle)

    def unbind(self, handle: str) -> bool:
        return unbind(handle)

    def holds(self, handle: str) -> bool:
        return handle in session.get("pending", [])

    def sso(self) -> SsoSession | None:
        return current_sso()

    def keep_sso(self, sso: SsoSession) -> None:
        session["sso"] = sso.to_json()

    def renew(self) -> None:
        pending_handles = session.get("pending", [])
        theme_app = session.get(theme.SESSION_KEY)
        ui_locale = session.get(locale.SESSION_KEY)  # the login's ui_locales language outlives the new identity
        session.clear()
        session["pending"] = pending_handles
        if theme_app is not None:  # the login's pages after sign-in (consent) still wear its app's theme
            session[theme.SESSION_KEY] = theme_app
        if ui_locale:
            session[locale.SESSION_KEY] = ui_locale
        request_ids.keep_login_id()
        regenerate = getattr(current_app.session_interface, "regenerate", None)
        if regenerate is not None:
            regenerate(session)

    def sign_out(self) -> None:
        new_browser_session()

    def forget_sso(self) -> None:
        session.pop("sso", None)

    def logout_handle(self) -> str | None:
        found = session.get(LOGOUT_KEY)
        return found if isinstance(found, str) else None

    def keep_logout_handle(self, handle: str | None) -> None:
        if handle is None:
            session.pop(LOGOUT_KEY, None)
        else:
            session[LOGOUT_KEY] = handle


class WebObserver:
    """``Observer``: Prometheus metrics (``broker.web.ops.metrics``) and the login id of the request."""

    def login_started(self) -> None:
        request_ids.start_login()

    def login_succeeded(self, upstream: str | None, downstream: str, how: str) -> None:
        metrics.login_succeeded(upstream, downstream, how)

    def step(self, name: str) -> AbstractContextManager[object]:
        return metrics.step(name)

    def reference(self) -> str:
        return support_reference()


class WebPlaces:
    """``Places``: the blueprints' addresses, relative to the broker (as ``url_for`` makes them)."""

    def discovery(self, handle: str) -> str:
        return url_for("login.discover", handle=handle)

    def consent(self, handle: str) -> str:
        return url_for("consent.show", handle=handle)

    def portal_home(self) -> str:
        return url_for("portal.home")

    def logout_resume(self, handle: str) -> str:
        return _absolute(url_for("saml_logout.resume", handle=handle))

    def upstream_logout_reply(self, handle: str) -> str:
        return _absolute(url_for("saml_sp_slo.reply", handle=handle))


def _absolute(path: str) -> str:
    """An address of the broker from its configured base URL, never from the request's Host header."""
    settings: Settings = current_app.extensions["broker"].settings
    return settings.url(path)


def support_reference() -> str:
    """The request's id (``X-Request-ID``, on every log line of the request), else a fresh one."""
    return request_id.get() or secrets.token_hex(6).upper()

