"""The OIDC upstream adapter refuses every broken or forged answer, with a broker error and nothing else.

Each test makes the demo provider break one rule (``Mischief``) or tampers with the callback, and checks that
``finish``/``start`` raise ``UpstreamVerificationFailed`` or ``UpstreamError`` whose operator detail names the
check that fired, so a test cannot pass because some other check happened to fail first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from broker.core import errors
from broker.demo.oidc_provider import Mischief
from tests.peers.servers import RunningServer, closed_port_url, serve
from tests.upstream.conftest import OidcWorld, in_seconds, utcnow


def refused(world: OidcWorld, mischief: Mischief, expected: type[errors.UpstreamError], words: str) -> None:
    world.provider.mischief = mischief
    upstream = world.upstream()
    with pytest.raises(expected) as failure:
        world.login(upstream)
    assert words in (failure.value.detail or ""), failure.value.detail


# -- the authorization response ---------------------------------------------------------------------------
# (state, iss/mix-up, code replay, nonce, audience/azp and alg attacks: tests/security/test_attack_upstream.py)


def test_access_denied(make_world: Callable[..., OidcWorld]) -> None:
    world = make_world(auto_login=None)
    upstream = world.upstream()
    url, pending = upstream.start(utcnow())
    answer = world.browser.submit(world.browser.get(url), button="deny")
    params = answer.json()
    assert params["error"] == "access_denied"
    params["error_description"] = "<script>alert(1)</script>"
    with pytest.raises(errors.UpstreamError) as failure:
        upstream.finish(pending, params, utcnow())
    assert type(failure.value) is errors.UpstreamError
    assert "access_denied" in (failure.value.detail or "")
    assert "script" not in failure.value.message
    assert world.provider.hits("token") == 0


# -- the ID token ---------------------------------------------------------------------------------------------


def test_expired(world: OidcWorld) -> None:
    overrides = {"exp": in_seconds(-120), "iat": in_seconds(-3720)}
    refused(world, Mischief(claim_overrides=overrides), errors.UpstreamVerificationFailed, "expired")


def test_expiry_within_the_clock_skew_is_accepted(world: OidcWorld) -> None:
    world.provider.mischief = Mischief(claim_overrides={"exp": in_seconds(-30), "iat": in_seconds(-3630)})
    assert world.login(world.upstream(clock_skew_seconds=60)).subject == "alice-0001"


def test_issued_in_the_future_beyond_skew(world: OidcWorld) -> None:
    refused(world, Mischief(claim_overrides={"iat": in_seconds(600)}), errors.UpstreamVerificationFailed,
            "issued in the future")


def test_wrong_issuer_in_the_token(world: OidcWorld) -> None:
    refused(world, Mischief(claim_overrides={"iss": "https://evil.example"}), errors.UpstreamVerificationFailed,
            "iss 'https://evil.example'")


def test_missing_sub(world: OidcWorld) -> None:
    refused(world, Mischief(drop_claims=("sub",)), errors.UpstreamVerificationFailed, "sub is missing")


def test_tampered_access_token_hash(world: OidcWorld) -> None:
    refused(world, Mischief(claim_overrides={"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"}),
            errors.UpstreamVerificationFailed, "at_hash")


# -- UserInfo and discovery ---------------------------------------------------------------------------------


def test_userinfo_sub_mismatch(world: OidcWorld) -> None:
    refused(world, Mischief(userinfo_sub="mallory"), errors.UpstreamVerificationFailed, "§5.3.2")


def test_discovery_document_for_another_issuer(world: OidcWorld) -> None:
    world.provider.mischief = Mischief(discovery_issuer="https://accounts.example")
    with pytest.raises(errors.UpstreamVerificationFailed) as failure:
        world.upstream().start(utcnow())
    assert "Discovery §4.3" in (failure.value.detail or "")


# -- the network ------------------------------------------------------------------------------------------------


def test_provider_unreachable(world: OidcWorld) -> None:
    upstream = world.upstream(issuer=closed_port_url())
    with pytest.raises(errors.UpstreamError) as failure:
        upstream.start(utcnow())
    assert type(failure.value) is errors.UpstreamError
    assert "could not reach" in (failure.value.detail or "")


def test_provider_gone_between_start_and_finish(world: OidcWorld) -> None:
    upstream = world.upstream()
    pending, params = world.authorize(upstream)
    world.server.stop()
    with pytest.raises(errors.UpstreamError) as failure:
        upstream.finish(pending, params, utcnow())
    assert "token endpoint: could not reach" in (failure.value.detail or "")


@pytest.fixture
def slow_server() -> Iterator[RunningServer]:
    release = threading.Event()
    app = Flask("slow")

    @app.get("/.well-known/openid-configuration")
    def slow() -> str:
        release.wait(timeout=5)
        return "{}"

    with serve(app) as server:
        yield server
        release.set()


def test_provider_too_slow(world: OidcWorld, slow_server: RunningServer) -> None:
    upstream = world.upstream(issuer=slow_server.url, http_timeout_seconds=0.2)
    started = time.monotonic()
    with pytest.raises(errors.UpstreamError) as failure:
        upstream.start(utcnow())
    assert "within 0.2 s" in (failure.value.detail or "")
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(("error", "cancelled"), [
    ("access_denied", True), ("user_cancelled_authorize", True), ("server_error", False)])
def test_cancellation_codes_get_the_cancelled_message(world: OidcWorld, error: str, cancelled: bool) -> None:
    upstream = world.upstream()
    _, pending = upstream.start(utcnow())
    with pytest.raises(errors.UpstreamError) as failure:
        upstream.finish(pending, {"error": error, "state": pending.state}, utcnow())
    assert ("cancelled" in failure.value.message) is cancelled
    assert error in (failure.value.detail or "")
