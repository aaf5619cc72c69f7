"""``broker operators`` (issue 19): roles are granted to and revoked from existing accounts only, each change is an
audit record naming the role and ``cli``, and ``list`` shows who holds what."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from broker.config.settings import load_settings
from broker.core.model import UpstreamIdentity, utcnow
from broker.storage import SqlAccountStore, SqlAuditLog, create_engine_for
from broker.storage.sealing import Sealer
from tests.cli_support import clean_environment  # noqa: F401 - an autouse fixture


@pytest.fixture
def config(instance_config: Path) -> Path:
    return instance_config


def _account(config: Path) -> str:
    settings = load_settings(config)
    engine = create_engine_for(settings.database_url)
    try:
        identity = UpstreamIdentity("city-idp", "https://idp.example", "staff-1", {}, None, utcnow())
        account, _ = SqlAccountStore(engine, Sealer(settings.claims_keys)).create_with_identity(identity, utcnow())
        return account.account_id
    finally:
        engine.dispose()


def _audit(config: Path) -> list[tuple[str, str | None, str | None]]:
    engine = create_engine_for(load_settings(config).database_url)
    try:
        return [(r.kind, r.account_id, r.reason) for r in reversed(SqlAuditLog(engine).events(limit=10))]
    finally:
        engine.dispose()


def test_grant_list_and_revoke_are_audited(cli: Any, config: Path) -> None:
    account = _account(config)

    assert cli("--config", str(config), "operators", "grant", account, "--role", "Admin").code == 0
    again = cli("--config", str(config), "operators", "grant", account, "--role", "admin")
    assert again.code == 0 and "already held" in again.out
    listing = cli("--config", str(config), "operators", "list", "--json").json()
    assert [(g["account_id"], g["role"], g["granted_by"]) for g in listing] == [(account, "admin", "cli")]
    assert cli("--config", str(config), "operators", "revoke", account, "--role", "admin").code == 0
    assert cli("--config", str(config), "operators", "list", "--json").json() == []

    assert _audit(config) == [("operator-role-granted", account, "admin granted by cli"),
                              ("operator-role-revoked", account, "admin revoked by cli")]


def test_an_unknown_account_or_role_is_refused_and_changes_nothing(cli: Any, config: Path) -> None:
    account = _account(config)
    unknown = cli("--config", str(config), "operators", "grant", "no-such-account", "--role", "admin")
    assert unknown.code == 1 and "no account" in unknown.err
    with pytest.raises(SystemExit) as usage:
        cli("--config", str(config), "operators", "grant", account, "--role", "root")
    assert usage.value.code == 2
    assert cli("--config", str(config), "operators", "revoke", account, "--role", "support").code == 1
    assert cli("--config", str(config), "operators", "list", "--json").json() == []
    assert _audit(config) == []
