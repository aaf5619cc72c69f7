"""Concurrent first logins of one identity make exactly one account, on every backend."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from broker.core.linking import resolve_account
from broker.core.model import Account, UpstreamIdentity
from broker.storage import SqlAccountStore
from broker.storage.sealing import Sealer
from broker.storage.tables import AccountRow, LinkedIdentityRow

SEALER = Sealer([secrets.token_bytes(32)])  # claims sealed at rest under a key of this run
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

THREADS = 30


def test_thirty_simultaneous_first_logins_make_one_account(
    engine: Engine, make_identity: Callable[..., UpstreamIdentity],
) -> None:
    store = SqlAccountStore(engine, SEALER)
    anna = make_identity()
    start = threading.Barrier(THREADS)

    def login() -> tuple[Account, bool]:
        start.wait()
        return resolve_account(store, anna, NOW)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [pool.submit(login) for _ in range(THREADS)]
        results = [f.result(timeout=60) for f in futures]  # re-raises any thread's exception

    assert len({account.account_id for account, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(AccountRow)) == 1
        assert connection.scalar(select(func.count()).select_from(LinkedIdentityRow)) == 1
