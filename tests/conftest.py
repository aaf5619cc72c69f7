"""Fixtures shared by every test package: an empty database on each backend (``database_url``) and an engine on
it once migrated (``engine``); the ``broker`` command run in-process (``cli``) and a new instance on each database
backend (``instance_config``), for the command's tests wherever they live."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from broker.instance import InstanceOptions, init_instance
from broker.storage import create_engine_for
from tests.cli_support import Result, database_urls, run_cli
from tests.databases import BACKENDS, database_for, migrated


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, not yet migrated: SQLite, and PostgreSQL (a schema of its own) when configured."""
    yield from database_for(request.param, tmp_path)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on ``database_url``, migrated to the newest revision."""
    migrated(database_url)
    engine = create_engine_for(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """``cli("--config", path, "operators", "list")``: the command's exit status and what it printed."""
    return lambda *argv: run_cli(capsys, *argv)


@pytest.fixture(params=BACKENDS)
def instance_config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """The ``broker.toml`` of a new instance (``broker init``) on SQLite, and on PostgreSQL when configured."""
    for url in database_urls(request.param, tmp_path):
        yield init_instance(InstanceOptions(tmp_path / "instance", database_url=url))
