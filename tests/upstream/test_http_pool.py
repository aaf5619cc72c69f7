"""``broker.upstream.http_pool``: the upstream HTTP client's rules, against real servers on 127.0.0.1.

Kept-alive connections (counted by ``KeepAliveServer``), the time budget, no redirects, the body
limit, TLS verification with the test run's CA, and every failure as ``UpstreamError`` with the operator's
words (``no answer from ... within``, ``could not reach ... (kind)``, ``larger than``).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator

import pytest
from flask import Flask, Response, jsonify, redirect, request
from flask.typing import ResponseReturnValue

from broker.core import errors
from broker.upstream import oidc_http
from broker.upstream.http_pool import CA_BUNDLE_ENV, Answer, UpstreamHttp
from tests.peers.servers import RunningServer, closed_port_url, serve
from tests.peers.tls import throwaway_ca
from tests.upstream.keepalive_support import KeepAliveServer

LIMIT = 4096


class Site:
    """A test server's app, and what it saw: requests per path, the Cookie header of each."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.cookies: list[str] = []
        self.release = threading.Event()
        self.app = self._app()

    def _app(self) -> Flask:
        app = Flask("http-pool-test")

        @app.before_request
        def record() -> None:
            self.hits[request.path] += 1
            self.cookies.append(request.headers.get("Cookie", ""))

        @app.get("/json")
        def small_json() -> ResponseReturnValue:
            answer = jsonify({"ok": True, "agent": request.headers.get("User-Agent")})
            answer.set_cookie("tracker", "1")
            return answer

        @app.post("/form")
        def form() -> ResponseReturnValue:
            return jsonify({"content_type": request.content_type, "form": request.form.to_dict()})

        @app.get("/slow")
        def slow() -> ResponseReturnValue:
            self.release.wait(timeout=5)
            return jsonify({})

        @app.get("/drip")
        def drip() -> ResponseReturnValue:
            def slowly() -> Iterable[bytes]:
                for _ in range(100):
                    if self.release.wait(timeout=0.05):
                        return
                    yield b" "
            return Response(slowly(), content_type="application/json")

        @app.get("/stall")
        def stall() -> ResponseReturnValue:
            def late() -> Iterable[bytes]:
                yield b" "
                self.release.wait(timeout=0.7)
                yield b" "
                self.release.wait(timeout=5)
            return Response(late(), content_type="application/json")

        @app.get("/redirect")
        def moved() -> ResponseReturnValue:
            return redirect("/target", code=302)

        @app.get("/target")
        def target() -> ResponseReturnValue:
            return jsonify({"followed": True})

        @app.get("/big")
        def big() -> ResponseReturnValue:
            return Response(b"x" * (LIMIT + 1), content_type="application/json")  # Content-Length declared

        @app.get("/big-stream")
        def big_stream() -> ResponseReturnValue:
            return Response((b"x" * 1024 for _ in range(LIMIT // 1024 + 1)), content_type="application/json")

        @app.get("/exact")
        def exact() -> ResponseReturnValue:
            return Response((b"y" * 1024 for _ in range(LIMIT // 1024)), content_type="text/plain; charset=utf-8")

        return app


@pytest.fixture
def site() -> Iterator[Site]:
    yield (made := Site())
    made.release.set()


@pytest.fixture
def server(site: Site) -> Iterator[RunningServer]:
    with serve(site.app) as running:
        yield running
        site.release.set()


@pytest.fixture
def http() -> Iterator[UpstreamHttp]:
    with UpstreamHttp(max_body_bytes=LIMIT) as client:
        yield client


def get(http: UpstreamHttp, url: str, timeout: float = 5) -> Answer:
    return http.request("GET", url, what="op test", timeout=timeout)


def detail_of(failure: pytest.ExceptionInfo[errors.UpstreamError]) -> str:
    assert type(failure.value) is errors.UpstreamError
    return failure.value.detail or ""


# -- keep-alive (werkzeug's test servers answer ``Connection: close``: these count on ``KeepAliveServer``) -------------


@pytest.fixture
def keepalive() -> Iterator[KeepAliveServer]:
    with KeepAliveServer({"/json": b'{"ok": true}'}) as running:
        yield running


def test_two_calls_share_one_kept_alive_connection(http: UpstreamHttp, keepalive: KeepAliveServer) -> None:
    first, second = get(http, keepalive.url + "/json"), get(http, keepalive.url + "/json")
    assert (first.status, first.content_type, first.body, second.status) == (200, "application/json",
                                                                              b'{"ok": true}', 200)
    assert (keepalive.requests, keepalive.connections) == (2, 1)


def test_after_close_a_new_connection_is_opened(http: UpstreamHttp, keepalive: KeepAliveServer) -> None:
    get(http, keepalive.url + "/json")
    http.close()
    get(http, keepalive.url + "/json")
    assert (keepalive.requests, keepalive.connections) == (2, 2)


def test_an_error_answer_keeps_the_connection(http: UpstreamHttp, keepalive: KeepAliveServer) -> None:
    assert get(http, keepalive.url + "/missing").status == 404
    assert get(http, keepalive.url + "/json").status == 200
    assert (keepalive.requests, keepalive.connections) == (2, 1)


def test_a_refused_body_drops_its_connection_and_the_next_call_works(http: UpstreamHttp) -> None:
    with KeepAliveServer({"/big": b"x" * (LIMIT + 1), "/json": b"{}"}) as server:
        with pytest.raises(errors.UpstreamError):
            get(http, server.url + "/big")
        assert get(http, server.url + "/json").status == 200
        assert (server.requests, server.connections) == (2, 2)


# -- what is sent, what is kept -------------------------------------------------------------------------------------


def test_form_data_is_sent_url_encoded(http: UpstreamHttp, server: RunningServer) -> None:
    answer = http.request("POST", server.url + "/form", what="op token endpoint", timeout=5,
                          data={"code": "a b&c=d", "grant_type": "authorization_code"})
    assert json.loads(answer.body) == {"content_type": "application/x-www-form-urlencoded",
                     "form": {"code": "a b&c=d", "grant_type": "authorization_code"}}


def test_no_cookie_is_kept_between_calls(http: UpstreamHttp, server: RunningServer, site: Site) -> None:
    get(http, server.url + "/json")
    answer = get(http, server.url + "/json")
    assert site.cookies == ["", ""]
    assert b'"agent":"civic-broker"' in answer.body


# -- time ------------------------------------------------------------------------------------------------------------


def test_no_answer_in_time_is_an_upstream_error_naming_the_wait(http: UpstreamHttp, server: RunningServer) -> None:
    url = server.url + "/slow"
    started = time.monotonic()
    with pytest.raises(errors.UpstreamError) as failure:
        get(http, url, timeout=0.2)
    assert detail_of(failure) == f"op test: no answer from {url} within 0.2 s"
    assert time.monotonic() - started < 2


def test_a_body_that_drips_in_is_cut_at_the_time_budget(http: UpstreamHttp, server: RunningServer) -> None:
    """Each byte comes within the socket timeout, but the whole answer may not take longer than ``timeout``."""
    url = server.url + "/drip"
    started = time.monotonic()
    with pytest.raises(errors.UpstreamError) as failure:
        get(http, url, timeout=0.4)
    elapsed = time.monotonic() - started
    assert detail_of(failure) == f"op test: no answer from {url} within 0.4 s"
    assert 0.35 < elapsed < 1.5, elapsed


def test_each_wait_for_the_body_ends_with_the_budget(http: UpstreamHttp, server: RunningServer) -> None:
    """A body that stalls after a while: the wait is cut when the budget ends, not a whole ``timeout`` later."""
    url = server.url + "/stall"
    started = time.monotonic()
    with pytest.raises(errors.UpstreamError) as failure:
        get(http, url, timeout=1.0)
    elapsed = time.monotonic() - started
    assert detail_of(failure) == f"op test: no answer from {url} within 1 s"
    assert 0.9 < elapsed < 1.4, elapsed


def test_a_closed_port_is_unreachable_not_slow(http: UpstreamHttp) -> None:
    url = closed_port_url() + "/json"
    with pytest.raises(errors.UpstreamError) as failure:
        get(http, url)
    assert detail_of(failure) == f"op test: could not reach {url} (ConnectionError)"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "http://[::1/x", "no-scheme"])
def test_an_unusable_url_is_an_upstream_error(http: UpstreamHttp, url: str) -> None:
    with pytest.raises(errors.UpstreamError) as failure:
        get(http, url)
    assert detail_of(failure).startswith(f"op test: could not reach {url} ("), detail_of(failure)


@pytest.mark.parametrize("value", ["line\nbreak", "\u0100-not-latin-1"])
def test_a_header_that_cannot_be_sent_is_an_upstream_error(http: UpstreamHttp, server: RunningServer,
                                                            value: str) -> None:
    url = server.url + "/json"
    with pytest.raises(errors.UpstreamError) as failure:
        http.request("GET", url, what="op test", timeout=5, headers={"Authorization": value})
    assert detail_of(failure).startswith(f"op test: could not reach {url} ("), detail_of(failure)


# -- redirects -------------------------------------------------------------------------------------------------------


def test_a_redirect_is_the_answer_not_followed(http: UpstreamHttp, server: RunningServer, site: Site) -> None:
    answer = get(http, server.url + "/redirect")
    assert answer.status == 302
    assert site.hits["/target"] == 0


def test_a_redirecting_endpoint_fails_require_json(http: UpstreamHttp, server: RunningServer, site: Site) -> None:
    reply = oidc_http.call(http, "GET", server.url + "/redirect", what="op discovery", timeout=5)
    with pytest.raises(errors.UpstreamError) as failure:
        oidc_http.require_json(reply, "op discovery")
    assert detail_of(failure) == "op discovery: HTTP 302"
    assert site.hits["/target"] == 0


# -- the body limit --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/big", "/big-stream"])
def test_a_body_over_the_limit_is_refused(http: UpstreamHttp, server: RunningServer, path: str) -> None:
    with pytest.raises(errors.UpstreamError) as failure:
        get(http, server.url + path)
    assert detail_of(failure) == f"op test: answer larger than {LIMIT} bytes"


def test_a_body_of_exactly_the_limit_is_read(http: UpstreamHttp, server: RunningServer) -> None:
    answer = get(http, server.url + "/exact")
    assert (len(answer.body), answer.content_type) == (LIMIT, "text/plain")


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        UpstreamHttp(max_body_bytes=0)


# -- TLS -------------------------------------------------------------------------------------------------------------


@pytest.fixture
def tls_server(site: Site) -> Iterator[RunningServer]:
    with serve(site.app, tls=throwaway_ca()) as running:
        yield running


@pytest.fixture
def no_bundle_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CA_BUNDLE_ENV:
        monkeypatch.delenv(name, raising=False)


def test_https_is_verified_against_the_given_bundle(no_bundle_env: None) -> None:
    with KeepAliveServer({"/json": b"{}"}, tls=throwaway_ca()) as server, \
            UpstreamHttp(ca_bundle=str(throwaway_ca().ca_file)) as http:
        assert get(http, server.url + "/json").status == 200
        assert get(http, server.url + "/json").status == 200
        assert (server.requests, server.connections) == (2, 1)  # one handshake for both


def test_https_from_an_unknown_ca_is_refused(tls_server: RunningServer, no_bundle_env: None) -> None:
    url = tls_server.url + "/json"
    with UpstreamHttp() as http, pytest.raises(errors.UpstreamError) as failure:
        get(http, url)  # certifi's bundle does not know the test CA
    assert detail_of(failure) == f"op test: could not reach {url} (SSLError)"


def test_the_requests_ca_bundle_variable_is_read_at_the_call(tls_server: RunningServer, no_bundle_env: None,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with UpstreamHttp() as http:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(throwaway_ca().ca_file))
        assert get(http, tls_server.url + "/json").status == 200
        monkeypatch.delenv("REQUESTS_CA_BUNDLE")
        http.close()
        with pytest.raises(errors.UpstreamError):
            get(http, tls_server.url + "/json")


# -- metrics ---------------------------------------------------------------------------------------------------------


def test_every_call_is_observed_answered_or_not(http: UpstreamHttp, server: RunningServer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, float]] = []
    monkeypatch.setattr(oidc_http, "observers", [lambda what, seconds: seen.append((what, seconds))])
    oidc_http.call(http, "GET", server.url + "/json", what="op JWKS", timeout=5)
    with pytest.raises(errors.UpstreamError):
        oidc_http.fetch(http, "GET", closed_port_url(), what="op API /user/emails", timeout=5)
    assert [what for what, _ in seen] == ["op JWKS", "op API /user/emails"]
    assert all(seconds >= 0 for _, seconds in seen)


# -- an outbound proxy from the environment, as ``requests`` honoured it

#: a loopback address nothing listens on: reached directly, a call there is refused
UNSERVED = "http://127.0.0.2:9"


def _without_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_a_plain_http_call_goes_through_the_proxy_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    _without_proxy_env(monkeypatch)
    with KeepAliveServer({f"{UNSERVED}/json": b'{"via": "proxy"}'}) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        with UpstreamHttp() as http:
            answer = get(http, f"{UNSERVED}/json")
    assert (answer.status, answer.body, proxy.requests) == (200, b'{"via": "proxy"}', 1)  # absolute-form target


def test_no_proxy_hosts_are_reached_directly(monkeypatch: pytest.MonkeyPatch, keepalive: KeepAliveServer) -> None:
    _without_proxy_env(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", UNSERVED)  # a proxy that would refuse every call
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with UpstreamHttp() as http:
        assert get(http, keepalive.url + "/json").status == 200
        with pytest.raises(errors.UpstreamError) as failure:
            get(http, "http://127.0.0.3:9/json")  # not in NO_PROXY: through the (refusing) proxy
    assert "could not reach" in detail_of(failure)
    assert keepalive.requests == 1


def test_without_proxy_variables_calls_are_direct(monkeypatch: pytest.MonkeyPatch,
                                                  keepalive: KeepAliveServer) -> None:
    _without_proxy_env(monkeypatch)
    with UpstreamHttp() as http:
        assert get(http, keepalive.url + "/json").status == 200
        with pytest.raises(errors.UpstreamError):
            get(http, f"{UNSERVED}/json")
