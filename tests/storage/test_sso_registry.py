"""``SqlSsoSessionRegistry``'s login-path calls in SQLAlchemy Core (issue 21): what they store and read back, and
that inside a login step they join the step's transaction."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from broker.core.model import Protocol, UpstreamIdentity
from broker.core.ports import SsoSessionRecord
from broker.core.sessions import Participant
from broker.storage import SqlAccountStore
from broker.storage.sealing import Sealer
from broker.storage.sso_sessions import USER_AGENT_LENGTH, SqlSsoSessionRegistry
from broker.storage.unit_of_work import SqlUnitOfWork

MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)


@pytest.fixture
def account_id(engine: Engine, make_identity: Callable[..., UpstreamIdentity]) -> str:
    account, _ = SqlAccountStore(engine, Sealer([secrets.token_bytes(32)])).create_with_identity(
        make_identity(subject=secrets.token_hex(4)), datetime.now(UTC))
    return account.account_id


def record(sid: str, account_id: str, created: datetime, *, lifetime: timedelta = HOUR,
           user_agent: str = "Test/1.0", upstream_sid: str | None = None) -> SsoSessionRecord:
    return SsoSessionRecord(sid, account_id, "op", created, created, created + lifetime, user_agent,
                            upstream_sid=upstream_sid)


def test_a_registered_session_reads_back_whole_with_its_user_agent_cut(engine: Engine, account_id: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    registry = SqlSsoSessionRegistry(engine)
    registry.register(record("s1", account_id, now, user_agent="x" * (USER_AGENT_LENGTH + 50), upstream_sid="up"))

    assert registry.all_of(account_id) == [SsoSessionRecord("s1", account_id, "op", now, now, now + HOUR,
                                                            "x" * USER_AGENT_LENGTH, None, upstream_sid="up")]
    assert registry.is_live("s1")
    assert not registry.is_live("unknown")


def test_an_ended_session_is_not_live_and_touch_moves_last_seen_only(engine: Engine, account_id: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    registry = SqlSsoSessionRegistry(engine)
    registry.register(record("kept", account_id, now - HOUR, lifetime=2 * HOUR))
    registry.register(record("ended", account_id, now))
    registry.end("ended", now)

    registry.touch("kept", now)
    registry.touch("unknown", now)  # ignored

    assert registry.is_live("kept")
    assert not registry.is_live("ended")
    kept = registry.all_of(account_id)[0]
    assert (kept.sid, kept.created_at, kept.last_seen) == ("kept", now - HOUR, now)


def test_active_lists_live_unexpired_sessions_latest_seen_first(engine: Engine, account_id: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    registry = SqlSsoSessionRegistry(engine)
    registry.register(record("older", account_id, now - 2 * MINUTE))
    registry.register(record("newer", account_id, now - MINUTE))
    registry.register(record("tie-b", account_id, now - 3 * MINUTE))
    registry.register(record("tie-a", account_id, now - 3 * MINUTE))
    registry.register(record("expired", account_id, now - 2 * HOUR))
    registry.register(record("ended", account_id, now))
    registry.end("ended", now)

    assert [r.sid for r in registry.active(account_id, now)] == ["newer", "older", "tie-a", "tie-b"]
    assert [r.sid for r in registry.all_of(account_id)] == ["expired", "tie-a", "tie-b", "older", "newer", "ended"]
    assert registry.active("no-such-account", now) == []


def test_participants_come_back_in_the_order_they_joined(engine: Engine, account_id: str) -> None:
    now = datetime.now(UTC)
    registry = SqlSsoSessionRegistry(engine)
    registry.register(record("s1", account_id, now))
    registry.join("s1", Participant("https://b.example", Protocol.SAML, "nid", "urn:persistent"), now)
    registry.join("s1", Participant("https://a.example", Protocol.OIDC, "sub"), now)

    assert registry.participants("s1") == [
        Participant("https://b.example", Protocol.SAML, "nid", "urn:persistent"),
        Participant("https://a.example", Protocol.OIDC, "sub", None)]
    assert registry.participants("unknown") == []


def test_in_a_step_the_session_is_stored_with_the_step_or_not_at_all(engine: Engine, account_id: str) -> None:
    """On a server database the step's transaction holds the insert: it reads back inside the step, and is gone
    when the step fails; on SQLite (separate writes) it is stored at once."""
    now = datetime.now(UTC)
    registry = SqlSsoSessionRegistry(engine)
    with pytest.raises(RuntimeError), SqlUnitOfWork(engine)():
        registry.register(record("in-step", account_id, now))
        registry.touch("in-step", now + MINUTE)
        assert registry.is_live("in-step")
        assert [r.last_seen for r in registry.active(account_id, now)] == [now + MINUTE]
        raise RuntimeError("the step fails")

    assert registry.is_live("in-step") is (engine.dialect.name == "sqlite")
