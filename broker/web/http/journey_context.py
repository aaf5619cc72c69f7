"""The journeys' view of one HTTP request (``broker.journeys.context``): this browser's server-side session,
the metrics and login ids of the request, and the broker's own addresses."""

from __future__ import annotations

from contextlib import AbstractContextManager

from flask import current_app, request, session, url_for

from broker.core.sessions import SsoSession
from broker.web.http.browser_state import bind, current_sso, unbind
from broker.web.ops import metrics, request_ids


class FlaskBrowser:
    """The browser of the current request (``Browser``): its handles and SSO session in the Flask session."""

    @property
    def user_agent(self) -> str:
        return request.user_agent.string

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
        session.clear()
        session["pending"] = pending_handles
        request_ids.keep_login_id()
        regenerate = getattr(current_app.session_interface, "regenerate", None)
        if regenerate is not None:
            regenerate(session)


class WebObserver:
    """``Observer``: Prometheus metrics (``broker.web.ops.metrics``) and the login id of the request."""

    def login_started(self) -> None:
        request_ids.start_login()

    def login_succeeded(self, upstream: str | None, downstream: str, how: str) -> None:
        metrics.login_succeeded(upstream, downstream, how)

    def step(self, name: str) -> AbstractContextManager[object]:
        return metrics.step(name)


class WebPlaces:
    """``Places``: the blueprints' addresses, relative to the broker (as ``url_for`` makes them)."""

    def discovery(self, handle: str) -> str:
        return url_for("login.discover", handle=handle)

    def portal_home(self) -> str:
        return url_for("portal.home")

