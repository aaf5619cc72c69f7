"""Error pages titled by what happened (issue 20, "Dead ends"; ``broker.web.pages``, ``broker.web.renderer``): a 404
is "Page not found", a refused request, a rate limit and the broker's own failures each their own; without a login
the way back is the citizen's account and the home page; the programs' endpoints keep their JSON errors."""

from __future__ import annotations

from collections.abc import Iterator

import lxml.html  # type: ignore[import-untyped]
import pytest
from flask import Flask
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import TooManyRequests
from werkzeug.test import TestResponse

from broker.app import close_app, create_app
from broker.config.settings import load_settings
from broker.instance import InstanceOptions, init_instance
from broker.storage import upgrade

WAYS = ["/account/", "/"]


def _limited() -> str:
    raise TooManyRequests("You asked for codes too often. Wait ten minutes.", retry_after=60)


def _broken() -> str:
    raise RuntimeError("a bug")


def _unavailable() -> str:
    raise OperationalError("SELECT 1", {}, Exception("database gone"))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    config = init_instance(InstanceOptions(tmp_path_factory.mktemp("errors") / "instance"))
    upgrade(load_settings(config, environ={}).database_url)
    app = create_app(load_settings(config, environ={}))
    for path, view in (("/_test/limited", _limited), ("/_test/broken", _broken), ("/_test/gone", _unavailable)):
        app.add_url_rule(path, path, view)
    yield app
    close_app(app)


def _page(response: TestResponse) -> tuple[str, str, list[str], str]:
    """The title (before the brand), the heading, the links in main, the alert's text."""
    document = lxml.html.fromstring(response.get_data(as_text=True))
    return (document.findtext(".//title").split(" · ")[0].strip(), document.findtext(".//h1").strip(),
            [str(href) for href in document.xpath("//main//a/@href")],
            document.xpath("string(//p[@role='alert'])").strip())


@pytest.mark.parametrize(("method", "path", "status", "title"), [
    ("GET", "/no/such/page", 404, "Page not found"),
    ("GET", "/consent/some-handle/return", 405, "This request could not be handled"),
    ("GET", "/_test/limited", 429, "Too many attempts, please wait"),
    ("GET", "/_test/broken", 500, "Something went wrong on our side"),
    ("GET", "/_test/gone", 503, "The service is not available right now"),
    ("GET", "/login/not-a-handle", 400, "We could not sign you in"),  # only a failed sign-in says so
])
def test_each_error_page_is_titled_by_what_happened(app: Flask, method: str, path: str, status: int,
                                                    title: str) -> None:
    response = app.test_client().open(path, method=method)

    assert response.status_code == status and response.mimetype == "text/html"
    shown_title, heading, links, message = _page(response)
    assert (shown_title, heading) == (title, title)
    assert links == WAYS and message  # no login known: the account and the home page


def test_a_sentence_written_for_people_is_shown_and_developer_text_is_not(app: Flask) -> None:
    client = app.test_client()
    assert _page(client.get("/_test/limited"))[3] == "You asked for codes too often. Wait ten minutes."
    assert client.get("/_test/limited").headers["Retry-After"] == "60"
    missing = _page(client.get("/no/such/page"))[3]
    assert "requested URL was not found" not in missing and missing.startswith("There is no page at this address")
    assert "a bug" not in client.get("/_test/broken").get_data(as_text=True)


def test_the_programs_endpoints_keep_json_errors(app: Flask) -> None:
    response = app.test_client().get("/oidc/token")
    assert response.status_code == 405 and response.is_json
    assert response.get_json()["error"] == "invalid_request"
