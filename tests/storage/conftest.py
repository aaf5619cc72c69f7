"""Databases for the storage tests (see ``tests/databases.py``) and identities to store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from broker.core.model import UpstreamIdentity
from broker.storage import create_engine_for, upgrade
from tests.databases import BACKENDS, database_for

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, not yet migrated."""
    yield from database_for(request.param, tmp_path)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a migrated database."""
    upgrade(database_url)
    engine = create_engine_for(database_url)
    yield engine
    engine.dispose()


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
