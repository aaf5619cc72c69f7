"""The account store at scale: lookup-or-create (``core.linking.resolve_account``) with 1,000,000 linked
identities on PostgreSQL.

A throwaway schema is migrated and filled with N accounts, each with one linked identity spread over four
upstreams (bulk ``INSERT ... SELECT generate_series``, then ``ANALYZE``); then, through the broker's own
``SqlAccountStore`` (claims sealed as in production):

- a returning citizen: ``resolve_account`` of an existing identity (a find by the unique (issuer, subject)
  index, then ``record_use``: the claims re-sealed and written) at concurrency 1 and 8;
- a first login: ``resolve_account`` of a new identity (insert of account + identity in one transaction).

Each phase is bounded by count and time; figures are per operation (p50/p95/p99) and operations per second.

    python bench/account_store_bench.py [--identities 1000000] [--ops 3000] [--seconds 20]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from broker.core.linking import resolve_account
from broker.core.model import EmailTrust, UpstreamIdentity
from broker.storage import SqlAccountStore, create_engine_for, upgrade
from broker.storage.sealing import Sealer
from tests.databases import postgres_schema

UPSTREAMS = ("https://accounts.google.com", "https://appleid.apple.com", "https://idp.city.example/idp",
             "https://login.microsoftonline.com/tenant/v2.0")


def fill(url: str, count: int) -> float:
    started = time.perf_counter()
    engine = create_engine_for(url)
    with engine.begin() as connection:
        connection.execute(text("""
            INSERT INTO accounts (account_id, created_at)
            SELECT uuid_in(md5('account-' || i)::cstring)::text, now() FROM generate_series(1, :n) AS i"""),
                           {"n": count})
        connection.execute(text("""
            INSERT INTO linked_identities (account_id, issuer, subject, upstream, first_used, last_used, last_acr,
                                           last_claims)
            SELECT uuid_in(md5('account-' || i)::cstring)::text,
                   (ARRAY[:u0, :u1, :u2, :u3])[1 + i % 4], 'subject-' || i, 'up' || (i % 4), now(), now(), NULL, '{}'
            FROM generate_series(1, :n) AS i"""), {"n": count, **{f"u{k}": u for k, u in enumerate(UPSTREAMS)}})
        connection.execute(text("ANALYZE accounts"))
        connection.execute(text("ANALYZE linked_identities"))
    engine.dispose()
    return time.perf_counter() - started


def identity(number: int) -> UpstreamIdentity:
    return UpstreamIdentity(upstream=f"up{number % 4}", issuer=UPSTREAMS[number % 4], subject=f"subject-{number}",
                            claims={"email": f"person{number}@example.org", "given_name": "Person"},
                            acr=None, auth_time=datetime.now(UTC), email_trust=EmailTrust.UNVERIFIED)


def measure(label: str, op: Callable[[int], None], numbers: list[int], concurrency: int, seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []

    def timed(number: int) -> None:
        if time.perf_counter() > deadline:
            return
        started = time.perf_counter()
        op(number)
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(timed, numbers))
    wall = time.perf_counter() - started
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100)
    print(f"| {label} | {concurrency} | {len(ms)} | {len(ms) / wall:,.0f} | {q[49]:.2f} | {q[94]:.2f} | {q[98]:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--identities", type=int, default=1_000_000)
    parser.add_argument("--ops", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    schema = postgres_schema(args.database_url)
    url = next(schema)
    try:
        upgrade(url)
        print(f"filled {args.identities:,} accounts and identities in {fill(url, args.identities):.1f} s")
        engine = create_engine_for(url)
        store = SqlAccountStore(engine, Sealer((secrets.token_bytes(32),)))
        now = datetime.now(UTC)

        def returning(number: int) -> None:
            account, created = resolve_account(store, identity(number), now)
            assert not created and account.account_id

        def first(number: int) -> None:
            _, created = resolve_account(store, identity(number), now)
            assert created

        rng = random.Random(7)
        print("| operation | concurrency | ops | ops/s | p50 ms | p95 ms | p99 ms |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for concurrency in (1, 8):
            existing = [rng.randrange(1, args.identities + 1) for _ in range(args.ops)]
            measure("returning citizen (find + record_use)", returning, existing, concurrency, args.seconds)
        fresh = list(range(args.identities + 1, args.identities + 1 + args.ops))
        measure("first login (create account + identity)", first, fresh, 8, args.seconds)
        engine.dispose()
    finally:
        for _ in schema:
            pass


if __name__ == "__main__":
    main()
