"""Support for the tests of the ``broker`` command, which call ``broker.cli.main.main`` in-process.

Import ``clean_environment`` into a test module to make it that module's autouse fixture. The fixtures ``cli``
(one command, in-process) and ``instance_config`` (a new instance on each database backend) are in
``tests/conftest.py``, built from ``run_cli`` and ``database_urls`` here."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.databases import POSTGRES_ENV, database_for, postgres_schema

#: read at import, before ``clean_environment`` removes every BROKER_* variable
POSTGRES_URL = os.environ.get(POSTGRES_ENV, "")


@dataclass(frozen=True)
class Result:
    """What one command did: its exit status and what it printed."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No BROKER_* variable of the caller's leaks in, and no ./broker.toml is found by accident."""
    for name in list(os.environ):
        if name.startswith("BROKER_"):
            monkeypatch.delenv(name)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)



def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    """``broker ARGV`` in-process: its exit status and what it printed."""
    from broker.cli.main import main

    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return Result(code, out, err)


def database_urls(backend: str, tmp_path: Path) -> Iterator[str]:
    """One database URL of ``backend`` (a PostgreSQL schema of its own, dropped after), as a generator to drain."""
    return postgres_schema(POSTGRES_URL) if backend == "postgresql" else database_for("sqlite", tmp_path)
