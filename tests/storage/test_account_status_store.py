"""Disabled accounts in SQL (revision 0017; ``SqlAccountStore.set_disabled``) and ``record_use`` telling whether
the identity's verified address changed (RISC identifier-changed; issue 18)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import Engine, insert, inspect, text, update

from broker.core.model import EmailTrust, UpstreamIdentity
from broker.storage import SqlAccountStore, create_engine_for, upgrade
from broker.storage.migrate import alembic_config
from broker.storage.sealing import Sealer
from broker.storage.tables import AccountRow, LinkedIdentityRow

SEALER = Sealer([secrets.token_bytes(32)])
Identity = Callable[..., UpstreamIdentity]


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def verified(identity: UpstreamIdentity, email: str) -> UpstreamIdentity:
    return replace(identity, claims={"email": email, "email_verified": True}, email_trust=EmailTrust.VERIFIED)


def test_an_account_is_disabled_and_enabled_again(engine: Engine, make_identity: Identity) -> None:
    store = SqlAccountStore(engine, SEALER)
    anna = make_identity()
    account, _ = store.create_with_identity(anna, now())
    assert account.disabled_at is None and account.disabled_reason is None
    at = now() + timedelta(minutes=5)

    assert store.set_disabled(account.account_id, at, "hijacking")
    for found in (store.get(account.account_id), store.find_by_identity(anna.issuer, anna.subject)):
        assert found is not None and (found.disabled_at, found.disabled_reason) == (at, "hijacking")
        assert found.disabled_at is not None and found.disabled_at.tzinfo is UTC

    assert store.set_disabled(account.account_id, None, "ignored when enabling")
    enabled = store.get(account.account_id)
    assert enabled is not None and (enabled.disabled_at, enabled.disabled_reason) == (None, None)
    assert store.set_disabled("no-such-account", at, None) is False


def test_record_use_tells_when_the_verified_address_changed(engine: Engine, make_identity: Identity) -> None:
    store = SqlAccountStore(engine, SEALER)
    anna = verified(make_identity(), "anna@example.org")
    account, _ = store.create_with_identity(anna, now())
    uses = [
        (verified(anna, "Anna@Example.org"), False),  # the same address (ASCII case folded)
        (replace(verified(anna, "anna.work@example.org"), email_trust=EmailTrust.UNVERIFIED), False),
        (verified(anna, "anna.new@example.org"), True),  # verified, and not the one asserted last
        (verified(anna, "anna.new@example.org"), False),
        (replace(anna, claims={"name": "Anna"}), False),  # no address at all
        (verified(anna, "anna.newer@example.org"), False),  # no address before: a first one, not a change
    ]
    for at, (identity, changed) in enumerate(uses, start=1):
        assert store.record_use(account.account_id, identity, now() + timedelta(minutes=at)) is changed, identity


def test_unreadable_claims_are_no_change(engine: Engine, make_identity: Identity) -> None:
    """Claims that no longer open are read as none (``SqlAccountStore``): nothing to compare, no event."""
    store = SqlAccountStore(engine, SEALER)
    anna = verified(make_identity(), "anna@example.org")
    account, _ = store.create_with_identity(anna, now())
    with engine.begin() as connection:
        connection.execute(update(LinkedIdentityRow).values(last_claims="v1.not-a-sealed-value"))
    assert store.record_use(account.account_id, verified(anna, "other@example.org"), now()) is False


def test_revision_0017_adds_the_columns_and_keeps_the_accounts(database_url: str) -> None:
    upgrade(database_url, "0016")
    account_id = str(uuid.uuid4())
    engine = create_engine_for(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(insert(AccountRow).values(account_id=account_id, created_at=now()))
        upgrade(database_url, "0017")
        columns = {c["name"]: c for c in inspect(engine).get_columns("accounts")}
        assert columns["disabled_at"]["nullable"] and columns["disabled_reason"]["nullable"]
        found = SqlAccountStore(engine, SEALER).get(account_id)
        assert found is not None and found.disabled_at is None  # existing accounts stay enabled

        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0016")
        engine.dispose()
        assert "disabled_at" not in {c["name"] for c in inspect(engine).get_columns("accounts")}
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM accounts")).scalar_one() == 1
    finally:
        engine.dispose()
