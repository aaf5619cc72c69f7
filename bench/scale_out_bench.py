"""Scale-out: 1, 2 and 3 broker instances on one PostgreSQL and one Redis, and where the next limit is.

    python bench/scale_out_bench.py [--instances 1,2,3] [--workers 1] [--threads 4] [--concurrency 6]
        [--logins 300] [--seconds 20] [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
        [--redis-url redis://127.0.0.1:6379/13] [--citizens 200] [--keep]

Each broker instance is its own gunicorn (``deploy/gunicorn.conf.py``, gthread, ``--workers`` each) with the same
instance settings, the same PostgreSQL schema (throw-away, dropped afterwards) and the same Redis (sessions,
pending state, rate limits; limits off here, as in ``bench/gunicorn_bench.py``). They all listen on one port
with ``SO_REUSEPORT`` (gunicorn ``--reuse-port``): the kernel spreads the browsers' connections over the
instances, as a load balancer without sticky sessions would, so one login's requests may land on different
instances. Instances are started one after the other and each step is measured with all of them running. The
peers (demo OpenID provider, pysaml2 IdP) and the driver are those of ``gunicorn_bench`` (functions imported),
with its ``--citizens`` (``bench/bench_citizens.py``): the logins are of that many citizens in turn, so that
concurrent logins do not all queue on one account's row lock (``--citizens 1``: every login the same citizen).

The load is S1 (SAML app -> broker -> OpenID provider, ``idp_hint``; each Response's status checked, the first
and last of each step parsed by pysaml2 with ``xmlsec1``) at a fixed concurrency, bounded by ``--logins`` and
``--seconds``. Reported per step: logins/s in total and per instance (the instance's share of the broker
requests in its access log); CPU per login (/proc/<pid>/stat before and after) of the broker processes, of the
PostgreSQL backends of the broker's connections (found by ``application_name``), of the Redis server (shared
with whatever else uses it) and of the peers and driver; lock waits (pg_stat_activity sampled every 50 ms:
the share of samples in which a broker backend waited on a heavyweight lock, and on any wait). Then the
extrapolation to a city of 1,000,000 citizens at a morning peak, with its assumptions printed.

CPU, not wall time, is the figure to carry over: this machine's speed drifts, and every process shares its
two cores, so logins/s here is bounded by the machine, not by the design.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests
from authlib.jose import JsonWebKey
from sqlalchemy import make_url, text

from bench.bench_citizens import DEFAULT as DEFAULT_CITIZENS
from bench.bench_citizens import ENV as CITIZENS_ENV
from bench.gunicorn_bench import (
    Bench,
    Server,
    cpu_delta,
    cpu_seconds,
    free_port,
    gunicorn,
    machine_busy,
    postgres_backends,
    redis_cleanup,
    redis_keys,
    wait_for,
    write_instance,
)
from bench.workers import run_bounded
from broker.storage import create_engine_for, upgrade
from tests.databases import postgres_schema
from tests.flows.federation import CLIENT_ID, UPSTREAM, make_keys

CITIZENS, SHARE, LOGINS_EACH, WINDOW_HOURS, PEAK = 1_000_000, 0.20, 3, 2.0, 2.0


@dataclass
class Cluster:
    brokers: list[Server]
    logs: list[Path]
    peers: list[Server]
    app_name: str
    admin_url: str
    redis_pid: int | None

    def postgres_pids(self) -> list[int]:
        return postgres_backends(self.admin_url, self.app_name)

    def snapshot(self) -> dict[str, dict[int, float]]:
        groups = {"broker": [p for b in self.brokers for p in b.pids()], "postgres": self.postgres_pids(),
                  "redis": [self.redis_pid] if self.redis_pid else [],
                  "peers+driver": [p for s in self.peers for p in s.pids()] + [os.getpid()]}
        return {name: {pid: cpu_seconds(pid) for pid in pids} for name, pids in groups.items()}


class LockSampler:
    """Samples pg_stat_activity for the broker's backends every 50 ms in a thread: active backends seen, those
    waiting on a heavyweight lock, those waiting on anything but the client, and each wait event's count."""

    def __init__(self, admin_url: str, app_name: str) -> None:
        self.engine = create_engine_for(admin_url)
        self.app_name, self.stop = app_name, threading.Event()
        self.counts: Counter[str] = Counter()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with self.engine.connect() as connection:
            while not self.stop.wait(0.05):
                rows = connection.execute(text(
                    "SELECT wait_event_type, wait_event, left(query, 70) FROM pg_stat_activity "
                    "WHERE application_name = :n AND state = 'active'"), {"n": self.app_name}).all()
                connection.rollback()
                self.counts["active"] += len(rows)
                for kind, name, query in rows:
                    if kind == "Lock":
                        self.counts["lock"] += 1
                        self.counts[f"query {' '.join(str(query).split())}"] += 1
                    if kind not in (None, "Client"):
                        self.counts["waiting"] += 1
                        self.counts[f"event {kind}:{name}"] += 1

    def finish(self) -> Counter[str]:
        self.stop.set()
        self.thread.join()
        self.engine.dispose()
        return self.counts


@dataclass(frozen=True)
class Step:
    instances: int
    logins: int
    seconds: float
    cpu: dict[str, float]  # CPU seconds per group during the step
    machine: float  # busy CPU seconds of the whole machine
    requests: list[int]  # broker requests of the step's logins, per instance
    waits: Counter[str]
    failures: Counter[str]


def run_step(bench: Bench, cluster: Cluster, concurrency: int, logins: int, seconds: float) -> Step:
    tag = f"so{len(cluster.brokers)}x{secrets.token_hex(3)}"
    bench.saml_login(f"{tag}-first", check=True)
    time.sleep(0.3)  # let the checked login's access log lines land before the offsets are taken
    offsets = [log.stat().st_size for log in cluster.logs]
    sampler = LockSampler(cluster.admin_url, cluster.app_name)
    before, machine_before = cluster.snapshot(), machine_busy()
    run = run_bounded(lambda n: bench.saml_login(f"{tag}-{n}"), concurrency, logins, seconds)
    after, machine_after = cluster.snapshot(), machine_busy()
    waits = sampler.finish()
    bench.saml_login(f"{tag}-last", check=True)
    time.sleep(0.5)  # gunicorn writes access log lines after the response
    per_instance = []
    for log, offset in zip(cluster.logs, offsets, strict=True):
        with log.open("rb") as handle:
            handle.seek(offset)
            per_instance.append(sum(1 for line in handle if f"login={tag}-".encode() in line
                                    and f"login={tag}-last ".encode() not in line))
    return Step(len(cluster.brokers), run.done, run.seconds, cpu_delta(before, after), machine_after - machine_before,
                per_instance, waits, Counter(failure[:160] for failure in run.failures))


def print_steps(steps: list[Step], workers: int, threads: int, concurrency: int, citizens: int = 1) -> None:
    print(f"\nS1 logins at concurrency {concurrency} of {citizens} citizen(s) in turn; each instance: gunicorn "
          f"{workers} worker(s) x {threads} threads")
    header = (f"{'inst':>4} {'logins':>6} {'/s':>6} {'/s per instance':<16} | {'broker':>6} {'pg':>5} {'redis':>5} "
              f"{'peers+drv':>9} | {'lock%':>5} {'wait%':>5} | {'cores':>5}")
    print(header)
    print(f"{'':>4} {'':>6} {'':>6} {'':<16} | {'CPU ms per login':^30} | {'pg waits':^11} |")
    print("-" * len(header))
    for r in steps:
        logins = max(1, r.logins)
        rate = r.logins / r.seconds
        split = " ".join(f"{rate * n / max(1, sum(r.requests)):.1f}" for n in r.requests)
        active = max(1, r.waits["active"])
        print(f"{r.instances:>4} {r.logins:>6} {rate:>6.1f} {split:<16} | {r.cpu['broker'] / logins * 1e3:>6.1f} "
              f"{r.cpu['postgres'] / logins * 1e3:>5.1f} {r.cpu['redis'] / logins * 1e3:>5.1f} "
              f"{r.cpu['peers+driver'] / logins * 1e3:>9.1f} | {100 * r.waits['lock'] / active:>5.1f} "
              f"{100 * r.waits['waiting'] / active:>5.1f} | {r.machine / r.seconds:>5.2f}")
        events = [(k[6:], n) for k, n in r.waits.most_common() if k.startswith("event ")][:3]
        if events:
            print("     top waits: " + ", ".join(f"{name} {100 * n / active:.0f}%" for name, n in events))
        queries = [(k[6:], n) for k, n in r.waits.most_common() if k.startswith("query ")][:2]
        if queries:
            print("     lock waits in: " + "; ".join(f"{q!r} {100 * n / active:.0f}%" for q, n in queries))
        if r.failures:
            print(f"     failures: {dict(r.failures)}")
    print("/s per instance: split by each instance's share of the broker requests in its access log; pg: the "
          "broker's PostgreSQL backends; redis: the whole Redis server (shared); lock%: samples of active broker "
          "backends waiting on a heavyweight lock (wait%: on any wait event but the client); cores: busy cores of "
          "the machine on average (of 2). Provisional figures from a shared 2-core machine.")


def extrapolate(steps: list[Step], citizens: int = 1) -> None:
    average = CITIZENS * SHARE * LOGINS_EACH / (WINDOW_HOURS * 3600)
    peak = average * PEAK
    print(f"\nExtrapolation for a city of {CITIZENS:,} citizens: {SHARE:.0%} sign in between 7:00 and 9:00 with "
          f"{LOGINS_EACH} logins each = {CITIZENS * SHARE * LOGINS_EACH:,.0f} logins in {WINDOW_HOURS:g} h = "
          f"{average:.0f}/s on average; the peak hour at {PEAK:g}x that = {peak:.0f} logins/s (S1 logins, CPU per "
          "login over all steps above; other bridges: bench/login_cost_bench.py).")
    logins = max(1, sum(r.logins for r in steps))
    per_login = {name: sum(r.cpu[name] for r in steps) / logins for name in ("broker", "postgres", "redis")}
    need = {name: value * peak for name, value in per_login.items()}
    print(f"  broker:     {per_login['broker'] * 1e3:6.1f} ms CPU per login -> {need['broker']:5.1f} cores at the "
          "peak (stateless: add instances)")
    print(f"  PostgreSQL: {per_login['postgres'] * 1e3:6.1f} ms CPU per login -> {need['postgres']:5.2f} cores at the "
          "peak (one primary: scales up only)")
    print(f"  Redis:      {per_login['redis'] * 1e3:6.1f} ms CPU per login -> {need['redis']:5.2f} cores at the peak "
          "(one command thread per server: 1 core is its ceiling)")
    active = max(1, sum(r.waits["active"] for r in steps))
    wal = sum(r.waits["event IO:WALSync"] + r.waits["event LWLock:WALWrite"] for r in steps) / active
    locks = sum(r.waits["lock"] for r in steps) / active
    shared = {"PostgreSQL, against a 16-core primary": need["postgres"] / 16,
              "Redis, against its one thread": need["redis"]}
    limit, used = max(shared.items(), key=lambda item: item[1])
    print(f"  By CPU, the next limit among the shared parts (the broker scales out) is {limit}: {used:.0%} of it "
          f"at the peak. But the broker's PostgreSQL backends, when active, waited on the WAL (commit flushes) in "
          f"{wal:.0%} of the samples and on row/transaction locks in {locks:.0%}: commits per second (commits per "
          "login from bench/login_cost_bench.py x logins/s) come before CPU."
          + (" (The lock waits are an artefact in part: every login here is the same citizen, whose rows a city's "
             "distinct citizens would not share; see --citizens.)" if citizens == 1 else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", default="1,2,3", help="instance counts to measure, rising")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers per instance")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--concurrency", type=int, default=6, help="browsers at once")
    parser.add_argument("--logins", type=int, default=300, help="at most this many logins per step")
    parser.add_argument("--seconds", type=float, default=20.0, help="at most this long per step")
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13", help="a spare Redis database number")
    parser.add_argument("--citizens", type=int, default=DEFAULT_CITIZENS,
                        help="how many different citizens sign in, in turn (1: every login the same one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = parser.parse_args()
    if args.citizens < 1:
        parser.error("--citizens must be at least 1")
    counts = sorted({int(x) for x in args.instances.split(",")})
    scratch = Path(tempfile.mkdtemp(prefix="scale-out-bench-"))
    schema = postgres_schema(args.database_url)
    servers: list[Server] = []
    redis_before = redis_keys(args.redis_url)
    try:
        app_name = f"bench-broker-{secrets.token_hex(4)}"
        url = make_url(next(schema))
        database_url = url.update_query_dict({"application_name": app_name}).render_as_string(hide_password=False)
        keys, instance = make_keys(scratch / "keys"), scratch / "instance"
        ports = {name: free_port() for name in ("broker", "op", "idp")}
        broker_url, op_url = f"http://127.0.0.1:{ports['broker']}", f"http://127.0.0.1:{ports['op']}"
        idp_url = f"http://localhost:{ports['idp']}"
        sp, app_secret = write_instance(instance, keys, broker_url, database_url, op_url, idp_url, args.redis_url)
        upgrade(database_url)
        cluster = Cluster([], [], [], app_name, args.database_url, None)

        def start_broker() -> None:
            n = len(cluster.brokers) + 1
            log, access = scratch / f"broker{n}.log", scratch / f"broker{n}-access.log"
            access.touch()
            (scratch / f"prometheus{n}").mkdir()
            environment = {"BROKER_CONFIG": str(instance / "broker.toml"),
                           "PROMETHEUS_MULTIPROC_DIR": str(scratch / f"prometheus{n}")}
            server = gunicorn(f"broker{n}", "broker:create_app()", ports["broker"], environment, log,
                              workers=args.workers, threads=args.threads, config=True, access_log=access,
                              options=("--reuse-port",))
            servers.append(server)
            deadline = time.monotonic() + 60
            while log.read_text().count("Booting worker") < args.workers:  # this instance's own workers are up
                if server.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{server.name} did not start: {log.read_text()[-3000:]}")
                time.sleep(0.2)
            cluster.brokers.append(server)
            cluster.logs.append(access)

        start_broker()
        wait_for(cluster.brokers[0], "/healthz", scratch / "broker1.log")
        op = gunicorn("op", "bench_peers:op_app()", ports["op"], {
            "BENCH_OP_ISSUER": op_url, "BENCH_OP_CLIENT_ID": CLIENT_ID,
            "BENCH_OP_SECRET_FILE": str(instance / "certs" / "op-client.secret"),
            "BENCH_OP_REDIRECT_URI": f"{broker_url}/upstream/oidc/{UPSTREAM}/callback",
            CITIZENS_ENV: str(args.citizens)},
            scratch / "op.log", workers=1, threads=8)
        servers.append(op)
        cluster.peers.append(op)
        wait_for(op, "/.well-known/openid-configuration", scratch / "op.log")
        sp.connect(requests.get(broker_url + "/saml2/idp/metadata", timeout=10).text)
        discovery = requests.get(broker_url + "/.well-known/openid-configuration", timeout=10).json()
        bench = Bench(broker_url, sp, discovery["issuer"], discovery["authorization_endpoint"],
                      discovery["token_endpoint"],
                      JsonWebKey.import_key_set(requests.get(discovery["jwks_uri"], timeout=10).json()), app_secret,
                      args.citizens)
        try:
            import redis

            cluster.redis_pid = int(redis.Redis.from_url(args.redis_url).info("server")["process_id"])
            if not Path(f"/proc/{cluster.redis_pid}").exists():
                cluster.redis_pid = None
        except Exception:
            cluster.redis_pid = None
        print(f"broker {broker_url} (SO_REUSEPORT), demo OP {op_url}; PostgreSQL schema via {args.database_url}; "
              f"Redis {args.redis_url}; {args.citizens} citizen(s)", flush=True)
        steps: list[Step] = []
        for count in counts:
            while len(cluster.brokers) < count:
                start_broker()
            for n in range(3 * count):  # warm-up: accounts, caches and connection pools of the new instances
                bench.saml_login(f"warm{count}-{n}", check=n == 0)
            steps.append(run_step(bench, cluster, args.concurrency, args.logins, args.seconds))
            print(f"  {count} instance(s): {steps[-1].logins} logins in {steps[-1].seconds:.1f} s", flush=True)
        print_steps(steps, args.workers, args.threads, args.concurrency, args.citizens)
        extrapolate(steps, args.citizens)
    finally:
        for server in reversed(servers):
            server.stop()
        for _ in schema:  # drops the PostgreSQL schema
            pass
        if redis_before is not None:
            redis_cleanup(args.redis_url, redis_before)
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
