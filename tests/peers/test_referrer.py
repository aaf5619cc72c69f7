"""The test browser's ``Origin`` and ``Referer`` (``tests.peers.referrer``) against the standards' cases, and
its https: it trusts the test run's CA and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask, jsonify, redirect, request
from flask.typing import ResponseReturnValue

from tests.peers import referrer
from tests.peers.browser import Browser
from tests.peers.servers import RunningServer, serve
from tests.peers.tls import _make, throwaway_ca

PAGE = "https://broker.example/login/h4ndle?x=1#frag"


@pytest.mark.parametrize(("policy", "target", "expected"), [
    ("same-origin", "https://broker.example/consent", "https://broker.example/login/h4ndle?x=1"),
    ("same-origin", "https://op.example/authorize", None),
    ("same-origin", "https://broker.example:8443/", None),  # another port is another origin
    ("no-referrer", "https://broker.example/consent", None),
    ("origin", "https://op.example/", "https://broker.example/"),
    ("strict-origin-when-cross-origin", "https://broker.example/a", "https://broker.example/login/h4ndle?x=1"),
    ("strict-origin-when-cross-origin", "https://op.example/", "https://broker.example/"),
    ("strict-origin-when-cross-origin", "http://op.example/", None),  # a downgrade
    ("strict-origin-when-cross-origin", "http://127.0.0.1:9/", "https://broker.example/"),  # loopback: no downgrade
    ("no-referrer-when-downgrade", "https://op.example/", "https://broker.example/login/h4ndle?x=1"),
    ("unsafe-url", "http://op.example/", "https://broker.example/login/h4ndle?x=1"),
])
def test_referrer_policy_8_3(policy: str, target: str, expected: str | None) -> None:
    assert referrer.referrer(PAGE, policy, target) == expected


def test_a_referrer_carries_no_credentials_or_fragment_and_long_ones_shrink_to_the_origin() -> None:
    assert referrer.referrer("https://u:p@a.example/p#f", "unsafe-url", "https://b.example/") == "https://a.example/p"
    assert referrer.referrer("https://a.example/" + "x" * 5000, "unsafe-url", "https://b.example/") == \
        "https://a.example/"


@pytest.mark.parametrize(("policy", "urls", "method", "expected"), [
    ("same-origin", ["https://broker.example/consent"], "POST", "https://broker.example"),
    ("same-origin", ["https://app.example/acs"], "POST", "null"),  # the SAML POST binding to an app
    ("no-referrer", ["https://broker.example/consent"], "POST", "null"),  # issue 14: what broke every form
    ("strict-origin-when-cross-origin", ["https://app.example/acs"], "POST", "https://broker.example"),
    ("strict-origin-when-cross-origin", ["http://app.example/acs"], "POST", "null"),  # https -> http
    ("same-origin", ["https://broker.example/consent"], "GET", None),  # navigations by GET carry none
    # a 307 through another origin and back: redirect-tainted (Fetch §3.2.4), so null
    ("unsafe-url", ["https://broker.example/a", "https://other.example/b", "https://broker.example/c"], "POST",
     "null"),
    ("unsafe-url", ["https://broker.example/a", "https://broker.example/c"], "POST", "https://broker.example"),
])
def test_origin_header_fetch_3_2_5(policy: str, urls: list[str], method: str, expected: str | None) -> None:
    assert referrer.origin_header("https://broker.example", policy, urls, method) == expected


@pytest.mark.parametrize(("header", "expected"), [
    ("same-origin", "same-origin"), ("no-referrer, Same-Origin", "same-origin"), ("same-origin, bogus", "same-origin"),
    ("bogus", None), ("", None), (None, None),
])
def test_parsing_the_header_8_1(header: str | None, expected: str | None) -> None:
    assert referrer.parse_policy(header) == expected


def _site(policy: str | None) -> Flask:
    app = Flask("site")

    @app.after_request
    def policy_header(response: ResponseReturnValue) -> ResponseReturnValue:
        if policy:
            response.headers["Referrer-Policy"] = policy  # type: ignore[union-attr]
        return response

    @app.get("/page")
    def page() -> str:
        target = request.args.get("to", "/echo")
        return f'<form method="post" action="{target}"><input name="a" value="1"></form>'

    @app.route("/echo", methods=["GET", "POST"])
    def echo() -> ResponseReturnValue:
        return jsonify(origin=request.headers.get("Origin"), referer=request.headers.get("Referer"))

    @app.post("/away")
    def away() -> ResponseReturnValue:
        return redirect(request.args["to"], code=int(request.args.get("code", "303")))

    return app


@pytest.fixture(scope="module")
def sites() -> Iterator[tuple[RunningServer, RunningServer]]:
    """A same-origin site on https, and another origin on plain-http loopback with no policy."""
    with serve(_site("same-origin"), tls=throwaway_ca()) as own, serve(_site(None)) as other:
        yield own, other


def test_a_same_origin_page_posts_its_origin_and_url(sites: tuple[RunningServer, RunningServer]) -> None:
    own, _ = sites
    with Browser() as browser:
        page = browser.get(own.url + "/page")
        assert browser.submit(page).json() == {"origin": own.url, "referer": own.url + "/page"}


def test_a_cross_origin_post_gets_null_and_no_referer(sites: tuple[RunningServer, RunningServer]) -> None:
    own, other = sites
    with Browser() as browser:
        page = browser.get(own.url + "/page", {"to": other.url + "/echo"})
        assert browser.submit(page).json() == {"origin": "null", "referer": None}


def test_a_redirect_to_another_origin_drops_the_referer(sites: tuple[RunningServer, RunningServer]) -> None:
    own, other = sites
    with Browser() as browser:
        page = browser.get(own.url + "/page", {"to": f"/away?to={other.url}/echo"})
        assert browser.submit(page).json() == {"origin": None, "referer": None}  # 303: a GET, no Origin
        page = browser.get(own.url + "/page", {"to": f"/away?code=307&to={other.url}/echo"})
        assert browser.submit(page).json() == {"origin": "null", "referer": None}  # 307: still a POST


def test_a_page_without_a_policy_sends_its_origin_across_origins(sites: tuple[RunningServer, RunningServer]) -> None:
    own, other = sites
    with Browser() as browser:
        page = browser.get(other.url + "/page", {"to": own.url + "/echo"})
        # the default strict-origin-when-cross-origin; http loopback -> https is no downgrade
        assert browser.submit(page).json() == {"origin": other.url, "referer": other.url + "/"}


def test_https_is_verified_against_the_test_ca_only(tmp_path: Path, sites: tuple[RunningServer, RunningServer]) -> None:
    own, _ = sites
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(own.url + "/echo", timeout=10, verify=True)  # the system's CAs do not know it
    stranger = _make(tmp_path)  # another CA, same names
    with serve(_site(None), tls=stranger) as impostor, Browser() as browser:
        with pytest.raises(requests.exceptions.SSLError):
            browser.get(impostor.url + "/echo")
        assert browser.get(own.url + "/echo").status_code == 200
