"""The test browser and servers: redirects, cookies, forms, self-submitting pages, and the loopback fence."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from flask import Flask, jsonify, make_response, redirect, request
from flask.typing import ResponseReturnValue

from tests.peers.browser import Browser, NoForm, RefusedHost
from tests.peers.servers import LateApp, RunningServer, closed_port_url, serve

POST_BINDING_PAGE = """<!doctype html>
<html><body onload="document.forms[0].submit()">
<form method="post" action="/acs">
  <input type="hidden" name="SAMLResponse" value="PHNhbWw+">
  <input type="hidden" name="RelayState" value="rs-1">
  <noscript><button type="submit">Continue</button></noscript>
</form></body></html>"""

LOGIN_PAGE = """<!doctype html>
<html><body>
<form id="login" method="post" action="/login?next=1">
  <label for="u">User</label><input id="u" name="user">
  <label for="r">Remember</label><input id="r" type="checkbox" name="remember" value="yes">
  <input type="hidden" name="csrf" value="tok">
  <button type="submit" name="go" value="now">Go</button>
</form></body></html>"""


def site() -> Flask:
    app = Flask("site")

    @app.get("/start")
    def start() -> ResponseReturnValue:
        response = make_response(redirect("/middle", code=302))
        response.set_cookie("visited", "yes")
        return response

    @app.get("/middle")
    def middle() -> ResponseReturnValue:
        return redirect("/end", code=303)

    @app.get("/end")
    def end() -> ResponseReturnValue:
        return jsonify(cookie=request.cookies.get("visited"), query=request.args.to_dict())

    @app.post("/keep-post")
    def keep_post() -> ResponseReturnValue:
        return redirect("/echo", code=307)

    @app.route("/echo", methods=["GET", "POST"])
    def echo() -> ResponseReturnValue:
        return jsonify(method=request.method, form=request.form.to_dict(), query=request.args.to_dict())

    @app.get("/away")
    def away() -> ResponseReturnValue:
        return redirect("https://example.org/phish", code=302)

    @app.get("/post-page")
    def post_page() -> str:
        return POST_BINDING_PAGE

    @app.post("/acs")
    def acs() -> ResponseReturnValue:
        return jsonify(request.form.to_dict())

    @app.get("/login-page")
    def login_page() -> str:
        return LOGIN_PAGE

    @app.post("/login")
    def login() -> ResponseReturnValue:
        return jsonify(form=request.form.to_dict(), query=request.args.to_dict())

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with serve(site()) as running:
        yield running


@pytest.fixture
def browser() -> Iterator[Browser]:
    with Browser() as opened:
        yield opened


def test_follows_redirects_and_keeps_cookies(server: RunningServer, browser: Browser) -> None:
    answer = browser.get(server.url + "/start", {"a": "1"})
    assert answer.json() == {"cookie": "yes", "query": {}}
    assert [u.rsplit("/", 1)[-1] for u in browser.history] == ["start", "middle", "end"]


def test_can_stop_at_a_redirect(server: RunningServer, browser: Browser) -> None:
    answer = browser.get(server.url + "/start", follow=False)
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/middle")


def test_307_keeps_the_post(server: RunningServer, browser: Browser) -> None:
    answer = browser.post(server.url + "/keep-post", {"x": "y"})
    assert answer.json()["method"] == "POST"
    assert answer.json()["form"] == {"x": "y"}


def test_refuses_hosts_other_than_loopback(server: RunningServer, browser: Browser) -> None:
    with pytest.raises(RefusedHost):
        browser.get("https://example.org/")
    with pytest.raises(RefusedHost):
        browser.get(server.url + "/away")
    assert not any("example.org" in u for u in browser.history)


def test_auto_submits_an_http_post_binding_page(server: RunningServer, browser: Browser) -> None:
    page = browser.get(server.url + "/post-page")
    assert browser.is_self_submitting(page)
    assert browser.auto_submit_all(page).json() == {"SAMLResponse": "PHNhbWw+", "RelayState": "rs-1"}


def test_fills_a_form_by_field_names(server: RunningServer, browser: Browser) -> None:
    page = browser.get(server.url + "/login-page")
    assert not browser.is_self_submitting(page)
    with pytest.raises(NoForm):
        browser.auto_submit(page)
    assert browser.form_fields(page, "login") == {"user": "", "csrf": "tok"}
    answer = browser.submit(page, {"user": "ann", "remember": "yes"}, form="login", button="go").json()
    assert answer == {"form": {"user": "ann", "remember": "yes", "csrf": "tok", "go": "now"}, "query": {"next": "1"}}
    with pytest.raises(NoForm):
        browser.submit(page, {"no-such-field": "x"})


def test_late_app_answers_503_until_attached() -> None:
    late = LateApp()
    with serve(late) as running:
        assert requests.get(running.url + "/", timeout=10).status_code == 503
        late.target = site()
        assert requests.get(running.url + "/end", timeout=10).json()["cookie"] is None


def test_stopped_and_closed_ports_refuse_connections() -> None:
    running = serve(site())
    running.stop()
    running.stop()
    for url in (running.url, closed_port_url()):
        with pytest.raises(requests.ConnectionError):
            requests.get(url + "/end", timeout=10)


def test_cross_site_post_withholds_lax_cookies_but_same_site_post_sends_them() -> None:
    from flask import Flask, Response, request

    from tests.peers.servers import serve

    app = Flask("cookies")

    @app.get("/set")
    def set_cookies() -> Response:
        response = app.response_class("set")
        response.set_cookie("lax", "1", samesite="Lax")
        response.set_cookie("plain", "1")
        return response

    @app.post("/echo")
    def echo() -> str:
        return ",".join(sorted(request.cookies))

    with serve(app) as server, Browser() as browser:
        browser.get(server.url + "/set")
        other_site = server.url.replace("127.0.0.1", "localhost") + "/page"
        assert browser.post(server.url + "/echo", {}, initiator=other_site).text == ""
        assert browser.post(server.url + "/echo", {}, initiator=server.url + "/page").text == "lax,plain"
