"""The city's look on every page (``[theme]``, ``broker.config.theme``; issue 20): which theme a page gets, the
generated stylesheet of its colours and font, and the theme's files.

A page shown during an app's login (discovery, consent, link offer, step-up, and the errors of those steps)
gets that app's theme; every other page (home, portal, console, a 404) the instance's. The login's app is
remembered in the browser's session, with the login's id, when a request begins a login (``remember_login_app``,
called by the SAML and OpenID entry points and the portal's sign-in), and read back only by the login's own
blueprints and only while that login is the browser's current one (``broker.web.ops.request_ids``).

The colours reach the page as CSS custom properties in ``/static/theme/<fingerprint>.css`` (the theme's files
are under ``/static/theme/files/``, beside the broker's own static files): a stylesheet of the broker's own
origin, so the Content-Security-Policy stays ``style-src 'self'`` (no inline style, no nonce), and its name
changes with its content, so browsers may keep it for a year.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, abort, current_app, g, request, send_from_directory, session, url_for
from flask_babel import get_locale
from werkzeug.wrappers import Response

from broker.config.theme import Theme, ThemeSettings, text_in
from broker.logging_setup import login_id
from broker.web.ops.request_ids import ENTRY_ENDPOINTS

bp = Blueprint("theme", __name__)

#: the browser session's key of the app whose login is in progress
SESSION_KEY = "theme_app"
#: blueprints whose pages belong to a login in progress (the portal, the console and the home page do not)
LOGIN_BLUEPRINTS = frozenset({"login", "consent", "link_offer", "step_up", "saml_idp", "saml_sp", "oidc_provider"})
STYLESHEET_MAX_AGE = 365 * 24 * 3600
FILE_MAX_AGE = 24 * 3600


@dataclass(frozen=True)
class ThemeState:
    settings: ThemeSettings
    theme_dir: Path | None
    brand_name: str
    stylesheets: Mapping[str, str]


@dataclass(frozen=True)
class PageTheme:
    """What ``base.html`` and the discovery page show of a theme, in the page's language."""

    stylesheet: str
    logo: str | None
    service_name: str
    footer_text: str
    footer_links: tuple[tuple[str, str], ...]
    upstream_logos: Mapping[str, str]

    def upstream_logo(self, name: str) -> str | None:
        return self.upstream_logos.get(name)


def remember_login_app(app: str) -> None:
    """A downstream's request begins a login for ``app`` (entity ID or client_id): its pages wear its theme."""
    g.theme_app = app


def _keep_login_app(response: Response) -> Response:
    """After the request that began a login: the app, with the id of the login it belongs to (made during the
    request, ``request_ids.start_login``), so a later login that names no app (the portal's, the console's)
    never wears the theme of an earlier one."""
    if "theme_app" in g:
        value = [login_id.get(), g.theme_app]
        if session.get(SESSION_KEY) != value:  # an unchanged session is not written back (issue 21)
            session[SESSION_KEY] = value
    return response


def login_app() -> str | None:
    """The app of the login this request belongs to, or None when the page is not part of a login."""
    if "theme_app" in g:
        return str(g.theme_app)
    if request.blueprint not in LOGIN_BLUEPRINTS or request.endpoint in ENTRY_ENDPOINTS:
        return None
    value = session.get(SESSION_KEY)
    if isinstance(value, list) and len(value) == 2 and value[0] == login_id.get() and isinstance(value[1], str):
        return value[1]
    return None


def _state() -> ThemeState:
    state: ThemeState = current_app.extensions["theme"]
    return state


def page_theme(theme: Theme, brand_name: str) -> PageTheme:
    lang = str(get_locale() or "en")

    def file(path: str) -> str:
        return url_for("theme.file", filename=path)

    return PageTheme(
        stylesheet=url_for("theme.stylesheet", name=theme.stylesheet_name),
        logo=file(theme.logo) if theme.logo else None,
        service_name=text_in(theme.service_name, lang, brand_name),
        footer_text=text_in(theme.footer_text, lang),
        footer_links=tuple((text_in(link.label, lang), link.url) for link in theme.footer_links),
        upstream_logos={name: file(path) for name, path in theme.upstream_logos},
    )


def _page_globals() -> dict[str, Any]:
    state = _state()
    return {"theme": page_theme(state.settings.for_app(login_app()), state.brand_name)}


@bp.get("/static/theme/<name>.css")
def stylesheet(name: str) -> Response:
    """A theme's colours and font as CSS custom properties (``Theme.stylesheet``)."""
    css = _state().stylesheets.get(name)
    if css is None:
        abort(404)
    return Response(css, mimetype="text/css",
                    headers={"Cache-Control": f"public, max-age={STYLESHEET_MAX_AGE}, immutable"})


@bp.get("/static/theme/files/<path:filename>")
def file(filename: str) -> Response:
    """A file of ``THEME_DIR/static/`` (logos); ``send_from_directory`` refuses paths that leave the folder."""
    theme_dir = _state().theme_dir
    if theme_dir is None:
        abort(404)
    response = send_from_directory(theme_dir / "static", filename, max_age=FILE_MAX_AGE)
    response.headers["Cache-Control"] = f"public, max-age={FILE_MAX_AGE}"
    return response


def init_theme(app: Flask, settings: ThemeSettings, theme_dir: Path | None, brand_name: str) -> None:
    app.extensions["theme"] = ThemeState(settings, theme_dir, brand_name, settings.stylesheets())
    app.register_blueprint(bp)
    app.context_processor(_page_globals)
    app.after_request(_keep_login_app)
