"""``UpstreamIdentity`` survives being stored while a link offer waits (``broker.web.link_offer``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from broker.core.model import EmailTrust, UpstreamIdentity


def test_round_trip() -> None:
    identity = UpstreamIdentity(
        upstream="apple", issuer="https://appleid.apple.com", subject="000042.c0ffee",
        claims={"email": "a@example.org", "email_verified": True, "address": {"locality": "Espoo"}},
        acr="urn:loa:2", auth_time=datetime(2026, 11, 23, 12, 0, tzinfo=UTC), amr=("pwd", "mfa"),
        email_trust=EmailTrust.VERIFIED, sent_once=frozenset({"given_name"}),
    )
    assert UpstreamIdentity.from_json(identity.to_json()) == identity


@pytest.mark.parametrize("text", ["{}", "[]", '{"upstream": "x"}', "null"])
def test_anything_else_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        UpstreamIdentity.from_json(text)
