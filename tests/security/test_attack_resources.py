"""Oversized input and resource exhaustion: every size cap is met before the expensive work it guards
(docs/security.md, the row of the same name; rate limits are in ``test_rate_limits.py``, the Redirect-binding
deflate bomb in ``test_fuzz_saml_requests.py``).
"""

from __future__ import annotations

import base64
import logging
import tracemalloc
import zlib
from typing import Any

import pytest

from broker.core import errors
from broker.downstream import saml_requests
from tests.flows.federation import Federation
from tests.peers.browser import Browser
from tests.security.attack_support import assert_nothing_stored, assert_page
from tests.upstream.conftest import OidcWorld


def test_oversized_saml_request_is_refused_before_parsing(federation: Federation, browser: Browser,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """A genuine signed AuthnRequest of a registered app, padded past the 64 KiB cap with line breaks after its
    root element (well-formed XML, outside what the signature covers): only the size cap refuses it, and
    before pysaml2 parses anything. With the cap lifted the very same request starts a sign-in."""
    parsed: list[object] = []
    genuine_parse = saml_requests._parse

    def parse(*args: Any) -> Any:
        parsed.append(args)
        return genuine_parse(*args)

    monkeypatch.setattr(saml_requests, "_parse", parse)
    _, destination, fields = federation.sps["sp1"].post_request()
    xml = base64.b64decode(fields["SAMLRequest"])
    padded = {**fields, "SAMLRequest": base64.b64encode(xml + b"\n" * 70_000).decode()}
    # over the cap, under the 256 KiB inflate bound and the 512 KiB body limit: no other limit is in the way
    assert saml_requests.MAX_MESSAGE_BYTES < len(padded["SAMLRequest"]) < saml_requests.MAX_XML_BYTES

    with caplog.at_level(logging.WARNING):
        page = browser.post(destination, padded)
    assert_page(page, 400)
    assert "detail=SAML message too large" in caplog.text
    assert parsed == []
    assert federation.provider.hits("authorize") == 0
    assert_nothing_stored(federation)

    monkeypatch.setattr(saml_requests, "MAX_MESSAGE_BYTES", 1024 * 1024)
    accepted = browser.post(destination, padded)
    assert accepted.status_code == 200 and len(parsed) == 1
    assert federation.provider.hits("authorize") == 1  # a valid request: the sign-in went to the provider


def test_oversized_relay_state_is_refused(federation: Federation, browser: Browser) -> None:
    """RelayState is echoed back in the answer page: more than 80 bytes is out of the binding's spec, more than
    the broker's cap (1 KiB) is refused before the request is parsed."""
    _, location = federation.sps["sp1"].redirect_request(relay_state="R" * 5000)
    page = browser.get(location)

    assert_page(page, 400)
    assert "RRRR" not in page.text
    assert federation.provider.hits("authorize") == 0
    assert_nothing_stored(federation)


def test_oversized_request_body_is_refused_unread(federation: Federation, browser: Browser) -> None:
    """A body over the app's MAX_CONTENT_LENGTH (512 KiB) is refused as too large, whatever the endpoint."""
    big = {"SAMLRequest": "A" * 10, "padding": "P" * (600 * 1024)}
    for path in ("/saml2/idp/sso/post", "/upstream/oidc/op/callback"):
        page = browser.post(federation.url + path, big)
        assert page.status_code == 413, (path, page.status_code)
        assert "Traceback" not in page.text and "PPPP" not in page.text
    assert_nothing_stored(federation)


def test_oversized_upstream_answer_is_refused(world: OidcWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """A provider (or someone on its path) answering with a huge JWKS: the broker stops reading at 1 MiB."""
    genuine = world.provider.jwks

    def huge() -> dict[str, Any]:
        return {**genuine(), "padding": "x" * (2 * 1024 * 1024)}

    monkeypatch.setattr(world.provider, "jwks", huge)
    with pytest.raises(errors.UpstreamError) as failure:
        world.login(world.upstream())
    assert "larger than" in (failure.value.detail or ""), failure.value.detail


def test_deflate_bomb_in_post_binding_is_refused_before_it_is_inflated(federation: Federation,
                                                                        browser: Browser) -> None:
    document = b"<!--" + b" " * 20_000_000 + b"-->"
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    encoded = base64.b64encode(deflate.compress(document) + deflate.flush()).decode()
    assert len(encoded) < 64 * 1024
    tracemalloc.start()
    try:
        page = browser.post(federation.url + "/saml2/idp/sso/post", {"SAMLRequest": encoded})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert_page(page, 400)
    # the traced peak covers the whole live request (server thread, Flask, the test browser): ~10 MiB here,
    # against ~470 MB when the message was inflated without a bound
    assert peak < 32 * 1024 * 1024, f"{peak / 2**20:.0f} MiB allocated to refuse a {len(encoded)}-byte request"
