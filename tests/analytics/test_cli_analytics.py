"""``broker analytics rollup`` and ``broker analytics report`` on an instance, and the rollup ``broker worker`` runs."""

from __future__ import annotations

import os
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.analytics import AnalyticsQueries
from broker.config.settings import load_settings
from broker.delivery.worker import PassReport, run_worker
from broker.instance import InstanceOptions, init_instance
from broker.storage import create_engine_for
from tests.analytics.analytics_support import now_utc, tell
from tests.cli_support import Result, clean_environment  # noqa: F401 - an autouse fixture
from tests.databases import BACKENDS, POSTGRES_ENV, database_for, postgres_schema

#: read before ``clean_environment`` removes every BROKER_* variable
POSTGRES_URL = os.environ.get(POSTGRES_ENV, "")



@pytest.fixture(params=BACKENDS)
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """An instance whose audit trail holds the story of ``analytics_support``."""
    urls = postgres_schema(POSTGRES_URL) if request.param == "postgresql" else database_for("sqlite", tmp_path)
    for url in urls:
        config = init_instance(InstanceOptions(tmp_path / "instance", database_url=url))
        engine = create_engine_for(url)
        try:
            tell(engine, now_utc())
        finally:
            engine.dispose()
        yield config


def test_rollup_then_report(cli: Any, config: Path) -> None:
    assert cli("--config", str(config), "analytics", "rollup", "--json").json() == {
        "records": 26, "batches": 1, "watermark": 26, "caught_up": True}
    assert cli("analytics", "rollup", "--config", str(config)).out == (
        "rolled up 0 audit records in 0 batches; watermark 26\n")

    shown = cli("analytics", "report", "--config", str(config), "--days", "7", "--json").json()
    assert shown["citizens"] == {"active": 4, "returning": 1, "new": 3}
    assert shown["mfa_adoption"] == {"part": 1, "whole": 3} and shown["rollup"]["watermark"] == 26

    text = cli("analytics", "report", "--config", str(config), "--days", "7")
    assert text.code == 0
    assert "citizens signed in: 4, returning 1; new accounts: 3" in text.out.splitlines()
    assert "  by upstream: google 3, city 2, passkey 1" in text.out.splitlines()
    assert "failed logins by reason: LoginStateInvalid 2, ConsentDeclined 1" in text.out.splitlines()
    assert "login time p50/p95: not measured" in text.out


def test_one_figure_as_csv_or_svg(cli: Any, config: Path) -> None:
    cli("--config", str(config), "analytics", "rollup")
    failures = cli("--config", str(config), "analytics", "report", "--days", "7", "--csv", "failures-by-reason")
    assert failures.out == "reason,failures\r\nLoginStateInvalid,2\r\nConsentDeclined,1\r\n"
    drawn = cli("--config", str(config), "analytics", "report", "--svg", "segments-assurance")
    assert ET.fromstring(drawn.out).get("role") == "img"
    wrong = cli("--config", str(config), "analytics", "report", "--csv", "nonsense")
    assert wrong.code == 2 and "sign-ins-by-upstream" in wrong.err and wrong.out == ""


def test_the_delivery_worker_rolls_up_too(config: Path) -> None:
    settings = load_settings(config, environ={})
    now = now_utc()
    assert run_worker(settings, threading.Event(), once=True, clock=lambda: now) == PassReport()
    engine = create_engine_for(settings.database_url)
    try:
        assert AnalyticsQueries(engine).status().watermark == 26
    finally:
        engine.dispose()
