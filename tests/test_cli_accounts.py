"""``broker accounts`` (issue 18): the operator disables an account (its live sessions end, the audit log says who
and why without the operator's free text), looks at it (status, sign-in methods, sessions: no claim value) and
enables it again; an unknown account is 1, an unusable reason a usage error."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.config.settings import load_settings
from broker.core.model import UpstreamIdentity
from broker.core.ports import SsoSessionRecord
from broker.storage import SqlAccountStore, create_engine_for
from broker.storage.sealing import Sealer
from broker.storage.sso_sessions import SqlSsoSessionRegistry
from tests.cli_support import clean_environment  # noqa: F401 - an autouse fixture


@pytest.fixture
def config(instance_config: Path) -> Path:
    return instance_config


def citizen(config: Path) -> str:
    """An account with one linked identity and one live SSO session, as a sign-in leaves them; its id."""
    settings = load_settings(config)
    engine = create_engine_for(settings.database_url)
    now = datetime.now(UTC)
    try:
        identity = UpstreamIdentity("city-idp", "https://idp.city.example", "anna-1",
                                    {"email": "anna@example.org", "name": "Anna Jansen"}, None, now)
        account, _ = SqlAccountStore(engine, Sealer(settings.claims_keys)).create_with_identity(identity, now)
        SqlSsoSessionRegistry(engine).register(SsoSessionRecord(
            secrets.token_urlsafe(16), account.account_id, "city-idp", now, now, now + timedelta(hours=8), "Firefox"))
    finally:
        engine.dispose()
    return account.account_id


def test_disable_show_and_enable(cli: Any, config: Path) -> None:
    account_id = citizen(config)
    base = ("--config", str(config), "accounts")

    disabled = cli(*base, "disable", account_id, "--reason", "lost phone, said anna@example.org", "--json")
    assert disabled.code == 0, disabled.err
    assert disabled.json() == {"account_id": account_id, "changed": True, "sessions_ended": 1, "events_queued": 0}
    again = cli(*base, "disable", account_id)
    assert (again.code, again.out) == (0, f"account {account_id} was disabled already\n")

    shown = cli(*base, "show", account_id, "--json").json()
    assert shown["status"] == "disabled" and shown["disabled_at"]
    assert shown["disabled_reason"] == "lost phone, said anna@example.org"  # the operators' own note
    assert shown["live_sessions"] == 0 and len(shown["sign_in_methods"]) == 1
    text = cli(*base, "show", account_id).out
    assert "Anna" not in text and "anna-1" not in text  # no claim value, no upstream subject

    audited = cli("--config", str(config), "audit", "list", "--account", account_id, "--json").json()
    [record] = [r for r in audited if r["kind"] == "account-disabled"]
    assert record["reason"].startswith("by cli") and "reason other; 1 sessions ended" in record["reason"]
    assert "anna" not in record["reason"] and "phone" not in record["reason"]

    enabled = cli(*base, "enable", account_id)
    assert (enabled.code, enabled.out) == (0, f"account {account_id} enabled: 0 account-enabled events queued\n")
    assert cli(*base, "show", account_id, "--json").json()["status"] == "enabled"
    assert cli(*base, "enable", account_id).out == f"account {account_id} was not disabled\n"
    newest = cli("--config", str(config), "audit", "list", "--account", account_id, "--limit", "1", "--json").json()
    assert [r["kind"] for r in newest] == ["account-enabled"]


def test_an_unknown_account_is_an_error(cli: Any, config: Path) -> None:
    for command in ("disable", "enable", "show"):
        result = cli("--config", str(config), "accounts", command, "no-such-account")
        assert (result.code, result.err) == (1, "broker: there is no account no-such-account\n")


@pytest.mark.parametrize("argv", [
    ["disable", "x", "--reason", "r" * 256],
    ["disable", "x", "--reason", "   "],
    ["disable", "x" * 65],
    ["show"],
])
def test_options_are_checked(cli: Any, config: Path, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli("--config", str(config), "accounts", *argv)
    assert exit_.value.code == 2
