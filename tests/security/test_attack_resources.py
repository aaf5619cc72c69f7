"""Oversized input and resource exhaustion: every size cap is met before the expensive work it guards
(docs/security.md, the row of the same name; rate limits are in ``test_rate_limits.py``, the Redirect-binding
deflate bomb in ``test_fuzz_saml_requests.py``).
"""

from __future__ import annotations

import base64
import tracemalloc
import zlib
from typing import Any

import pytest

from broker.core import errors
from tests.flows.federation import Federation
from tests.peers.browser import Browser
from tests.security.attack_support import assert_nothing_stored, assert_page
from tests.upstream.conftest import OidcWorld


def test_oversized_saml_request_is_refused_before_parsing(federation: Federation, browser: Browser) -> None:
    # (moved here from tests/flows/test_saml_to_oidc_attacks.py)
    page = browser.post(federation.url + "/saml2/idp/sso/post", {"SAMLRequest": "A" * 200_000})

    assert_page(page, 400)


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
