"""The floor of a brokered login's CPU with this stack: what its parts cost when they do nothing else (issue 21).

A login is a few HTTP requests to the broker, SQL statements, Redis commands, signatures and outbound calls;
``bench/login_cost_bench.py`` counts them per bridge. Here each kind of part is measured on its own, as little
of it as a login can use:

- a request to a bare Flask app under gunicorn with the broker's configuration (``deploy/gunicorn.conf.py``, gthread,
  access log), then the same app opening and saving a small Flask-Session session in Redis: CPU of the worker
  process per request (``/proc``), over a kept-alive connection;
- one primary-key SELECT on PostgreSQL through raw psycopg and through SQLAlchemy Core (a statement built once),
  one COMMIT, one Redis command through redis-py, one RSA-3072 and one ES256 signature and one
  RSA-3072 verification (``cryptography``): CPU of
  this thread per call (``time.thread_time``).

It then prints, per bridge, the sum of the counts times the unit costs: the CPU a login would take with this
stack if the broker added nothing of its own between the parts. The gap between that and the broker's CPU per
login (``bench/gunicorn_bench.py``) is what the broker's code, Flask's and the libraries' per-call work add.

    python bench/floor_bench.py [--requests 1500 --calls 2000 --database-url URL --redis-url URL]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
import redis
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from sqlalchemy import bindparam, column, create_engine, select, table

from bench.gunicorn_bench import children, cpu_seconds, free_port, gunicorn, wait_for

#: per login, from ``python bench/login_cost_bench.py --scenarios S1,S2`` after issue 21's third part: broker
#: requests, SQL statements, commits, Redis commands; RSA-3072 signatures (the SAML Response and its Assertion),
#: ES256 signatures (the ID token), RSA verifications (the upstream's ID token; its SAML Response and Assertion),
#: outbound calls to the upstream (token and UserInfo)
LOGINS: dict[str, dict[str, int]] = {
    "S1 SAML app -> OIDC provider": {"requests": 2, "statements": 12, "commits": 1, "redis": 11, "rsa": 2, "es256": 0,
                                     "verify": 1, "outbound": 2},
    "S2 OIDC app -> SAML IdP": {"requests": 4, "statements": 19, "commits": 3, "redis": 17, "rsa": 0, "es256": 1,
                                "verify": 2, "outbound": 0},
}


def hello_app() -> Any:
    """A Flask app with one small page: gunicorn's and Flask's own cost per request."""
    from flask import Flask

    app = Flask("floor")

    @app.route("/")
    def page() -> str:
        return "<!doctype html><title>ok</title><p>ok</p>"

    return app


def session_app() -> Any:
    """The same page, opening and saving a small server-side session in Redis (``FLOOR_REDIS_URL``)."""
    from flask import session
    from flask_session import Session

    app = hello_app()
    app.config.update(SESSION_TYPE="redis", SESSION_REDIS=redis.Redis.from_url(os.environ["FLOOR_REDIS_URL"]),
                      SECRET_KEY="floor-bench", SESSION_KEY_PREFIX="broker:floor:")
    Session(app)

    @app.route("/session")
    def counted() -> str:
        session["n"] = int(session.get("n", 0)) + 1
        return "<!doctype html><title>ok</title><p>ok</p>"

    return app


def per_request(app: str, path: str, requests_count: int, folder: Path, redis_url: str) -> float:
    """Worker CPU (ms) per request of ``app`` under gunicorn: 1 worker, 4 threads, the broker's config file."""
    port = free_port()
    log = folder / f"{app}.log"
    server = gunicorn("floor", f"floor_bench:{app}", port, {"FLOOR_REDIS_URL": redis_url}, log, workers=1,
                      threads=4, config=True, access_log=folder / "access.log")
    try:
        wait_for(server, path, log)
        client = requests.Session()
        for _ in range(50):
            client.get(server.url + path, timeout=10).raise_for_status()
        workers = children(server.process.pid)
        before = sum(cpu_seconds(pid) for pid in workers)
        for _ in range(requests_count):
            client.get(server.url + path, timeout=10).raise_for_status()
        return 1000 * (sum(cpu_seconds(pid) for pid in workers) - before) / requests_count
    finally:
        server.stop()


def per_call(call: Callable[[], object], calls: int) -> float:
    """CPU (ms) of this thread per call, after a warm-up."""
    for _ in range(min(200, calls)):
        call()
    start = time.thread_time()
    for _ in range(calls):
        call()
    return 1000 * (time.thread_time() - start) / calls


def unit_costs(database_url: str, redis_url: str, calls: int) -> dict[str, float]:
    costs: dict[str, float] = {}
    raw = psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
    raw.execute("CREATE TEMP TABLE floor_rows (id text PRIMARY KEY, value text)")
    raw.execute("INSERT INTO floor_rows VALUES ('a', 'b')")

    def raw_select() -> None:
        raw.execute("SELECT id, value FROM floor_rows WHERE id = %(id)s", {"id": "a"}).fetchone()

    costs["statement (raw psycopg)"] = per_call(raw_select, calls)
    raw.autocommit = False

    def raw_commit() -> None:
        raw.execute("UPDATE floor_rows SET value = %(v)s WHERE id = 'a'", {"v": "c"})
        raw.commit()

    costs["write + commit (raw psycopg)"] = per_call(raw_commit, calls // 4) - costs["statement (raw psycopg)"]
    raw.close()
    engine = create_engine(database_url)
    rows = table("floor_rows", column("id"), column("value"))
    lookup = select(rows.c.id, rows.c.value).where(rows.c.id == bindparam("id"))
    with engine.connect() as connection:
        connection.exec_driver_sql("CREATE TEMP TABLE floor_rows (id text PRIMARY KEY, value text)")
        connection.exec_driver_sql("INSERT INTO floor_rows VALUES ('a', 'b')")
        costs["statement (SQLAlchemy Core)"] = per_call(lambda: connection.execute(lookup, {"id": "a"}).first(),
                                                        calls)
    engine.dispose()
    client = redis.Redis.from_url(redis_url)
    costs["Redis command (redis-py)"] = per_call(lambda: client.get("broker:floor:absent"), calls)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    costs["RSA-3072 signature"] = per_call(
        lambda: rsa_key.sign(b"x" * 64, padding.PKCS1v15(), hashes.SHA256()), max(50, calls // 10))
    signature = rsa_key.sign(b"x" * 64, padding.PKCS1v15(), hashes.SHA256())
    public = rsa_key.public_key()
    costs["RSA-3072 verification"] = per_call(
        lambda: public.verify(signature, b"x" * 64, padding.PKCS1v15(), hashes.SHA256()), calls)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    costs["ES256 signature"] = per_call(lambda: ec_key.sign(b"x" * 64, ec.ECDSA(hashes.SHA256())), calls)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500, help="requests per gunicorn measurement")
    parser.add_argument("--calls", type=int, default=2000, help="calls per in-process measurement")
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--outbound-ms", type=float, default=0.22,
                        help="CPU of one outbound call on a kept-alive connection (bench/http_client_bench.py)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        bare = per_request("hello_app()", "/", args.requests, folder, args.redis_url)
        with_session = per_request("session_app()", "/session", args.requests, folder, args.redis_url)
    store = redis.Redis.from_url(args.redis_url)
    for key in store.scan_iter(match="broker:floor:*"):
        store.delete(key)
    costs = unit_costs(args.database_url, args.redis_url, args.calls)
    print("unit costs, CPU ms")
    print(f"  {'request, bare Flask under gunicorn (worker process)':58s} {bare:6.3f}")
    print(f"  {'request, same with a Redis session opened and saved':58s} {with_session:6.3f}")
    for name, value in costs.items():
        print(f"  {name:58s} {value:6.3f}")
    print(f"  {'outbound call, kept-alive (--outbound-ms)':58s} {args.outbound_ms:6.3f}")
    print("\nfloor per login: the counts times the unit costs (each request with its session, which is two of the "
          "Redis commands; statements through raw psycopg / through SQLAlchemy Core)")
    for name, count in LOGINS.items():
        common = (count["requests"] * with_session + count["commits"] * costs["write + commit (raw psycopg)"]
                  + (count["redis"] - 2 * count["requests"]) * costs["Redis command (redis-py)"]
                  + count["rsa"] * costs["RSA-3072 signature"]
                  + count["es256"] * costs["ES256 signature"] + count["verify"] * costs["RSA-3072 verification"]
                  + count["outbound"] * args.outbound_ms)
        raw_sql = common + count["statements"] * costs["statement (raw psycopg)"]
        core_sql = common + count["statements"] * costs["statement (SQLAlchemy Core)"]
        parts = ", ".join(f"{key} {value}" for key, value in count.items())
        print(f"  {name:30s} {raw_sql:5.1f} / {core_sql:5.1f} ms   ({parts})")


if __name__ == "__main__":
    main()
