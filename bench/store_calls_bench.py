"""Per-call CPU of the login path's account and consent store calls (issue 21), on PostgreSQL in-process.

A throwaway schema is migrated; one account with one linked identity (claims sealed as in production) and one
consent are stored; then each store method is called N times after a warm-up, and its thread CPU time and wall
time per call are printed. ``create_with_identity`` creates a new identity on each call. For reference, the same
lookup as ``find_by_identity`` through a Core connection and through raw psycopg.

    python bench/store_calls_bench.py [--calls 400] [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import itertools
import secrets
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select

from broker.core.consent import Consent, ConsentHow
from broker.core.model import UpstreamIdentity
from broker.storage import SqlAccountStore, create_engine_for
from broker.storage.consents import SqlConsentStore
from broker.storage.db import reading
from broker.storage.migrate import upgrade
from broker.storage.sealing import Sealer
from broker.storage.tables import AccountRow, LinkedIdentityRow
from tests.databases import postgres_schema


def timed(name: str, call: Callable[[], object], calls: int) -> None:
    """Print the CPU and wall time per call of ``call`` over ``calls`` calls, after a warm-up."""
    for _ in range(min(30, calls)):
        call()
    cpu, wall = time.thread_time(), time.perf_counter()
    for _ in range(calls):
        call()
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    print(f"{name:32s} CPU {1e3 * cpu / calls:.3f} ms  wall {1e3 * wall / calls:.3f} ms")


def identity(subject: str) -> UpstreamIdentity:
    return UpstreamIdentity(upstream="op", issuer="https://op", subject=subject,
                            claims={"email": "a@example.org", "email_verified": True, "given_name": "A"},
                            acr=None, auth_time=datetime.now(UTC))


def run_with_arguments(run: Callable[[str, int], None], description: str) -> None:
    """``run(url, calls)`` on a throw-away PostgreSQL schema, with this bench's command line (``--calls``,
    ``--database-url``); shared with ``bench/session_calls_bench.py``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    for url in postgres_schema(args.database_url):
        run(url, args.calls)


def main() -> None:
    run_with_arguments(run, __doc__.splitlines()[0])


def run(url: str, n: int) -> None:
    upgrade(url)
    engine = create_engine_for(url)
    accounts = SqlAccountStore(engine, Sealer([secrets.token_bytes(32)]), email_index=lambda a: a[::-1])
    consents = SqlConsentStore(engine)
    known = identity("s1")
    account, _ = accounts.create_with_identity(known, datetime.now(UTC))
    account_id = account.account_id
    consents.record(Consent(account_id, "app", frozenset({"email"}), frozenset(), "1", datetime.now(UTC),
                            ConsentHow.PAGE))
    timed("find_by_identity", lambda: accounts.find_by_identity("https://op", "s1"), n)
    timed("record_use", lambda: accounts.record_use(account_id, known, datetime.now(UTC)), n)
    timed("identity_claims", lambda: accounts.identity_claims(account_id), n)
    timed("last_claims", lambda: accounts.last_claims(account_id), n)
    timed("get", lambda: accounts.get(account_id), n)
    timed("identities", lambda: accounts.identities(account_id), n)
    timed("verified_email_owners", lambda: accounts.verified_email_owners("a@example.org"), n)
    fresh = itertools.count()
    timed("create_with_identity", lambda: accounts.create_with_identity(
        identity(f"new-{next(fresh)}"), datetime.now(UTC)), n)
    timed("consents.current", lambda: consents.current(account_id, "app"), n)
    timed("consents.record", lambda: consents.record(Consent(
        account_id, "app", frozenset({"email"}), frozenset(), "1", datetime.now(UTC), ConsentHow.PAGE)), n)
    core_query = (select(AccountRow.__table__)
                  .join(LinkedIdentityRow.__table__, LinkedIdentityRow.account_id == AccountRow.account_id)
                  .where(LinkedIdentityRow.issuer == "https://op", LinkedIdentityRow.subject == "s1"))
    reader = reading(engine)

    def core() -> object:
        with reader.connect() as connection:
            return connection.execute(core_query).one_or_none()

    timed("(ref) Core connection lookup", core, n)
    raw = engine.raw_connection()

    def psycopg() -> None:
        driver = raw.driver_connection
        assert driver is not None
        driver.execute("SELECT a.* FROM accounts a JOIN linked_identities l ON l.account_id = a.account_id"
                       " WHERE l.issuer = %s AND l.subject = %s", ("https://op", "s1")).fetchone()
        driver.commit()

    timed("(ref) raw psycopg lookup", psycopg, n)
    raw.close()
    engine.dispose()


if __name__ == "__main__":
    main()
