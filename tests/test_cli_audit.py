"""``broker audit verify`` and ``broker audit list``: exit 0 on an intact audit trail, 1 naming the first record
that was edited or deleted in the database behind the broker's back."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url

from broker.cli.main import main
from broker.config.settings import load_settings
from broker.core.audit import AuditEvent, AuditKind
from broker.storage import SqlAuditLog, create_engine_for
from tests.cli_support import Result, clean_environment  # noqa: F401 - an autouse fixture

AT = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)



@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("template") / "plain"
    assert main(["init", str(folder)]) == 0
    return folder


@pytest.fixture
def config(template: Path, tmp_path: Path) -> Path:
    """An instance with five audit records (accounts a, b, a, b, a)."""
    target = tmp_path / "instance"
    shutil.copytree(template, target)
    engine = create_engine_for(load_settings(target / "broker.toml").database_url)
    try:
        log = SqlAuditLog(engine)
        for i in range(5):
            log.record(AuditEvent(AuditKind.LOGIN_SUCCEEDED, AT + timedelta(minutes=i), account_id="ab"[i % 2],
                                  upstream="op", downstream="https://permits.example.org", reason=f"r{i}"))
    finally:
        engine.dispose()
    return target / "broker.toml"


def sql(config: Path, statement: str) -> None:
    """Tamper with the database directly, as someone with access to the file could."""
    path = make_url(load_settings(config).database_url).database
    assert path
    connection = sqlite3.connect(path)
    try:
        with connection:
            changed = connection.execute(statement).rowcount
    finally:
        connection.close()
    assert changed > 0


def test_verify_passes_on_an_intact_trail(cli: Any, config: Path) -> None:
    result = cli("--config", str(config), "audit", "verify")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("audit trail intact: 5 records in 8 chains, combined digest ")
    head = cli("--config", str(config), "audit", "verify", "--json").json()
    assert head["intact"] is True and head["records"] == 5 and head["problem"] is None and head["problems"] == []
    assert lines[0].endswith(head["head"]) and len(head["heads"]) == 8
    assert lines[1] == f"  chain 1: 5 records, head {head['heads'][0]['hash']}"
    assert lines[9] == f"heads (keep this line; --anchor checks it later): {head['anchor']}"
    assert head["anchor"].startswith(f"1:5:{head['heads'][0]['hash']},2:0:")


def test_verify_on_a_fresh_instance(cli: Any, template: Path, tmp_path: Path) -> None:
    shutil.copytree(template, tmp_path / "fresh")
    result = cli("--config", str(tmp_path / "fresh" / "broker.toml"), "audit", "verify")
    assert result.code == 0
    assert result.out.startswith("audit trail intact: 0 records in 8 chains, combined digest ")
    assert f"  chain 1: 0 records, head {'0' * 64}\n" in result.out


@pytest.mark.parametrize(("statement", "message"), [
    ("UPDATE audit_events SET reason = 'nothing happened' WHERE seq = 3", "record 3 was edited (row id 3)"),
    ("UPDATE audit_events SET account_id = NULL WHERE seq = 1", "record 1 was edited (row id 1)"),
    ("DELETE FROM audit_events WHERE seq = 2", "record 2 is missing (deleted)"),
    ("DELETE FROM audit_events WHERE seq >= 4", "the newest records after 3 were deleted"),
    ("DELETE FROM audit_events", "every record was deleted"),
])
def test_verify_names_the_first_broken_record(cli: Any, config: Path, statement: str, message: str) -> None:
    sql(config, statement)
    result = cli("--config", str(config), "audit", "verify")
    assert result.code == 1
    assert result.out.splitlines()[0] == f"audit trail broken: chain 1: {message}"


def test_verify_names_a_broken_record_in_another_chain_and_a_missing_head(cli: Any, config: Path) -> None:
    engine = create_engine_for(load_settings(config).database_url)
    try:
        log = SqlAuditLog(engine, 4)
        for i in range(3):
            log.record(AuditEvent(AuditKind.LOGGED_OUT, AT + timedelta(hours=1, minutes=i), account_id="c"))
    finally:
        engine.dispose()
    sql(config, "UPDATE audit_events SET account_id = 'x' WHERE chain = 4 AND seq = 2")
    sql(config, "DELETE FROM audit_chain_head WHERE id = 6")
    result = cli("--config", str(config), "audit", "verify")
    assert result.code == 1
    assert result.out.splitlines()[:2] == ["audit trail broken: chain 4: record 2 was edited (row id 7)",
                                           "audit trail broken: chain 6: the chain head is missing"]
    report = cli("--config", str(config), "audit", "verify", "--json").json()
    assert [(p["chain"], p["kind"]) for p in report["problems"]] == [(4, "edited"), (6, "no-head")]
    assert report["records"] is None and len(report["heads"]) == 7


def test_verify_with_the_saved_anchor_catches_a_consistent_rewrite(cli: Any, config: Path) -> None:
    anchor = cli("--config", str(config), "audit", "verify", "--json").json()["anchor"]
    assert cli("--config", str(config), "audit", "verify", "--anchor", anchor).code == 0
    # record 5 deleted and the head set back to record 4: the chain alone is intact again
    sql(config, "DELETE FROM audit_events WHERE seq = 5")
    sql(config, "UPDATE audit_chain_head SET seq = 4, hash = (SELECT hash FROM audit_events WHERE seq = 4) "
                "WHERE id = 1")
    assert cli("--config", str(config), "audit", "verify").code == 0
    result = cli("--config", str(config), "audit", "verify", "--anchor", anchor)
    assert result.code == 1
    assert result.out.splitlines()[0].startswith(
        "audit trail broken: chain 1: record 5 is not the one the saved anchor names")
    report = cli("--config", str(config), "audit", "verify", "--json", "--anchor", anchor).json()
    assert report["anchor_checked"] is True and report["problem"]["kind"] == "anchor-mismatch"


def test_verify_refuses_a_malformed_anchor(cli: Any, config: Path) -> None:
    result = cli("--config", str(config), "audit", "verify", "--anchor", "1:5:not-a-hash")
    assert result.code == 2 and "--anchor: chain 1: the hash is not 64 hexadecimal digits" in result.err


def test_verify_json_describes_the_problem(cli: Any, config: Path) -> None:
    sql(config, "UPDATE audit_events SET kind = 'logged-out' WHERE seq = 4")
    result = cli("--config", str(config), "audit", "verify", "--json")
    assert result.code == 1
    report = result.json()
    assert report["intact"] is False and report["records"] == 5
    assert report["problem"] == {"kind": "edited", "chain": 1, "seq": 4, "record_id": 4,
                                 "message": "chain 1: record 4 was edited"}


def test_list_shows_the_newest_first_and_filters(cli: Any, config: Path) -> None:
    result = cli("--config", str(config), "audit", "list", "--limit", "2")
    assert result.code == 0
    lines = result.out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("1:5 2026-12-08T10:04:00+00:00 login-succeeded account_id=a ")
    assert lines[1].startswith("1:4 ") and "reason=r3" in lines[1]

    records = cli("--config", str(config), "audit", "list", "--account", "b", "--json").json()
    assert [(r["seq"], r["account_id"], r["reason"]) for r in records] == [(4, "b", "r3"), (2, "b", "r1")]
    assert set(records[0]) == {"chain", "seq", "at", "kind", "account_id", "upstream", "downstream", "reason",
                               "reference", "hash"}


@pytest.mark.parametrize("limit", ["0", "-1", "many"])
def test_list_refuses_a_bad_limit(cli: Any, config: Path, limit: str) -> None:
    with pytest.raises(SystemExit) as caught:
        cli("--config", str(config), "audit", "list", "--limit", limit)
    assert caught.value.code == 2
