"""A browser session is written back only when a request changed it (issue 21): the login's ``ui_locales``
(``broker.web.locale``) and the login's app (``broker.web.theme``) are assigned only when they differ from what
the session holds, so an entry request that repeats them leaves the session unmodified. Which paths open no
session at all (``broker.web.http.session_ids.sessionless_paths``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Blueprint, Flask, g, session
from werkzeug.wrappers import Response

from broker.logging_setup import login_id
from broker.web import locale, theme
from broker.web.http.session_ids import sessionless_paths


@pytest.fixture
def app() -> Flask:
    app = Flask(__name__)
    app.secret_key = "a test secret of some length, for the cookie session"
    app.add_url_rule("/oidc/authorize", "oidc_provider.authorize", lambda: "")
    return app


@pytest.fixture
def in_login() -> Iterator[str]:
    token = login_id.set("login-1")
    yield "login-1"
    login_id.reset(token)


@pytest.mark.parametrize(("kept", "asked", "modified"), [("de", "de", False), ("de", "fr", True), (None, "ar", True)])
def test_ui_locales_are_written_only_when_they_change(app: Flask, kept: str | None, asked: str,
                                                      modified: bool) -> None:
    with app.test_request_context(f"/oidc/authorize?ui_locales={asked}"):
        if kept is not None:
            session[locale.SESSION_KEY] = kept
        session.modified = False

        locale._remember_ui_locales()

        assert session.modified is modified
        assert session[locale.SESSION_KEY] == asked


@pytest.mark.parametrize(("kept", "app_id", "modified"), [
    (["login-1", "sp1"], "sp1", False),
    (["login-1", "sp1"], "sp2", True),
    (["login-0", "sp1"], "sp1", True),  # an earlier login's app
    (None, "sp1", True),
])
def test_the_logins_app_is_written_only_when_it_changes(app: Flask, in_login: str, kept: list[str] | None,
                                                         app_id: str, modified: bool) -> None:
    with app.test_request_context("/oidc/authorize"):
        if kept is not None:
            session[theme.SESSION_KEY] = kept
        session.modified = False
        g.theme_app = app_id

        theme._keep_login_app(Response())

        assert session.modified is modified
        assert session[theme.SESSION_KEY] == [in_login, app_id]


def _health() -> Blueprint:
    health = Blueprint("health", __name__)
    health.add_url_rule("/healthz", "healthz", lambda: "ok")
    return health


def test_files_and_probes_are_found_by_their_path(app: Flask) -> None:
    app.register_blueprint(_health())
    paths = sessionless_paths(app)

    asked = ("/static/broker.css", "/static/a/b.png", "/healthz", "/healthz/x", "/oidc/authorize", "/", "/static")
    assert [p for p in asked if p in paths] == ["/static/broker.css", "/static/a/b.png", "/healthz"]


def test_a_beginning_shared_with_another_endpoint_is_not_used(app: Flask) -> None:
    app.add_url_rule("/static/forms/<name>", "pages.form", lambda name: name)
    app.add_url_rule("/healthz", "pages.healthz_post", lambda: "", methods=["POST"])
    app.register_blueprint(_health())

    paths = sessionless_paths(app)

    assert "/static/broker.css" not in paths and "/healthz" not in paths
