"""``broker.upstream.oidc_http``: what an upstream's token response may hand the broker as an access token."""

from __future__ import annotations

import pytest

from broker.core import errors
from broker.upstream.oidc_http import access_token_of


@pytest.mark.parametrize("token", ["2YotnFZFEjr1zCsicMWpAA", "a.b-c_d~e+f/g==", "!#$%&'()*,:;<>?@[]^`{|}"])
def test_visible_ascii_tokens_are_taken(token: str) -> None:
    assert access_token_of({"access_token": token}, "op token endpoint") == token


@pytest.mark.parametrize("token", [None, "", 42, "has space", "line\nbreak", "tab\t", "Ā-not-latin-1", "é", "\x00"])
def test_other_tokens_are_an_upstream_error_not_a_crash(token: object) -> None:
    # A token outside visible ASCII cannot go into an Authorization header: http.client would raise
    # UnicodeEncodeError (found by tests/security/test_fuzz_social.py) or send a broken header.
    with pytest.raises(errors.UpstreamError):
        access_token_of({"access_token": token}, "op token endpoint")
