"""Databases for the storage tests (see ``tests/databases.py``) and identities to store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from broker.core.model import UpstreamIdentity

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)




@pytest.fixture
def make_identity() -> Callable[..., UpstreamIdentity]:
    return _identity


def _identity(
    subject: str = "subject-1",
    issuer: str = "https://idp.example.org",
    claims: dict[str, str] | None = None,
    acr: str | None = "urn:example:loa:2",
) -> UpstreamIdentity:
    return UpstreamIdentity(
        upstream="example-idp",
        issuer=issuer,
        subject=subject,
        claims=claims if claims is not None else {"email": "anna@example.org"},
        acr=acr,
        auth_time=NOW,
    )
