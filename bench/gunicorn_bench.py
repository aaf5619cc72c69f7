"""Full brokered logins per second with the broker under gunicorn on PostgreSQL and Redis, peers in their own processes.

    python bench/gunicorn_bench.py [--logins 400] [--seconds 10] [--concurrency 1,4,16] [--workers 3] [--threads 4]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--redis-url redis://127.0.0.1:6379/11]
        [--profile-seconds 6] [--count-sql] [--synchronous-commit-off] [--bridges saml->oidc,oidc->saml] [--keep]
        [--citizens 200]

What runs (everything on 127.0.0.1, each in its own process so CPU can be told apart):

- the broker: ``gunicorn -c deploy/gunicorn.conf.py --worker-class gthread`` on ``broker:create_app()``, with a
  temporary instance folder (fresh keys and secrets, consent-exempt release policy, rate limits off), its
  database in a throw-away PostgreSQL schema (dropped afterwards) and browser sessions in Redis (a spare database
  number; only the ``broker:`` keys this run wrote are deleted afterwards);
- the demo OpenID provider (``broker.demo``, auto-login) and a pysaml2 SAML IdP (``tests.peers.saml_idp``,
  auto-login, signing in-process), each under its own one-worker gunicorn (``bench/bench_peers.py``);
- the "browsers" and the apps: threads of this process, one fresh cookie jar per login (no SSO shortcut).

The logins are of ``--citizens`` different citizens (``bench/bench_citizens.py``), each bridge taking them in
turn (its k-th login is citizen k mod N; a cookie the browser sends the peers says which): concurrent logins are
of different people, as in a city, instead of all queueing on one account's row lock (``--citizens 1``, the
earlier bench: ``complete_login`` 150-300 ms at c16 against 2 ms at c1). Before the measured runs every citizen
signs in once through each bridge, so the figures are of returning citizens, as most of a city's logins are (a
first login also creates the account: "new accounts" below). At the end the broker's accounts and linked
identities are counted against the citizens signed in.

Two bridges, each login complete:

- ``saml->oidc``: a pysaml2 SP signs a Redirect-binding AuthnRequest (``idp_hint=op``) -> broker -> demo OpenID
  provider -> broker callback (code exchange, ID token check) -> the signed SAML Response the browser would post
  to the SP (its Status checked on every login; the SP's pysaml2 parse, signatures checked with ``xmlsec1``,
  on an extra login before and after every run);
- ``oidc->saml``: an OIDC authorization request with PKCE and nonce (``idp_hint=city``) -> broker -> signed
  AuthnRequest to the SAML IdP -> its signed Response posted cross-site to the broker's ACS -> redirect with a code
  -> the app redeems it at the token endpoint (client_secret_basic, code_verifier) -> ID token verified against
  the broker's JWKS (signature, iss, aud, exp, nonce).

Each run is bounded by ``--logins`` and ``--seconds``. The table gives logins/s, end-to-end latency, the
broker's own server time per login (gunicorn's request time ``%(L)s`` summed over every request of the login,
back-channel calls upstream included; grouped by an ``X-Bench-Login`` header in the access log), CPU seconds
per login and where the machine's CPU went (/proc/<pid>/stat before and after: the broker's gunicorn master and
workers, the PostgreSQL backends of the broker's connections, the Redis server (shared with anything else using
it), the two peers, this driver process, and "other" = everything else the machine did meanwhile). Then py-spy
(``pip install py-spy``) samples the broker's workers under concurrency-16 load of both bridges and the hottest
functions are printed. ``--count-sql`` serves the broker through ``bench_peers.counted_broker_app`` (SQLAlchemy
events count statements and commits per request) and prints them per login; the timed figures are then not the
plain app's.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", module="saml2")
warnings.filterwarnings("ignore", module="authlib")


import lxml.html  # type: ignore[import-untyped]  # noqa: E402
import requests  # noqa: E402
from authlib.common.security import generate_token  # noqa: E402
from authlib.jose import JsonWebKey, jwt  # noqa: E402
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # noqa: E402
from sqlalchemy import make_url, text  # noqa: E402

from bench.bench_citizens import COOKIE as CITIZEN_COOKIE  # noqa: E402
from bench.bench_citizens import DEFAULT as DEFAULT_CITIZENS  # noqa: E402
from bench.bench_citizens import ENV as CITIZENS_ENV  # noqa: E402
from bench.bench_citizens import idp_user, op_user  # noqa: E402
from bench.bench_config import ORDINARY_RISK  # noqa: E402
from bench.workers import run_bounded  # noqa: E402
from broker.keys.keyring import generate_keyring  # noqa: E402
from broker.oidc.client import hash_secret  # noqa: E402
from broker.storage import create_engine_for, upgrade  # noqa: E402
from tests.databases import postgres_schema  # noqa: E402
from tests.flows.federation import CLIENT_ID, UPSTREAM, _write_instance, make_keys  # noqa: E402
from tests.flows.saml_peers import SpKeys, TestSp  # noqa: E402
from tests.peers.browser import ALLOWED_HOSTS, Browser  # noqa: E402
from tests.peers.saml_idp import TestIdp  # noqa: E402

REDIRECTS = frozenset({301, 302, 303, 307, 308})
CLK = os.sysconf("SC_CLK_TCK")
APP_ID, APP_REDIRECT = "bench-app", "http://127.0.0.1:9/callback"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
IDP_UPSTREAM = "city"  # the SAML IdP's name at the broker (``write_instance``)
LOG_FORMAT = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss login=%({x-bench-login}i)s sql=%({x-bench-sql}o)s'
LOG_LINE = re.compile(r'"(\S+) (\S+) [^"]*" (\d{3}) \S+ ([\d.]+)s login=(\S+) sql=(\d+ \d+|-)')


# -- processes and CPU --------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime+stime of the process plus those of its waited-for children, in seconds (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK  # fields 14-17 of proc(5), after pid and comm


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(FileNotFoundError):
            found += [int(x) for x in (task / "children").read_text().split()]
    return found


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine (all cores) since boot."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / CLK


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str

    def pids(self) -> list[int]:
        return [self.process.pid, *children(self.process.pid)]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def gunicorn(name: str, app: str, port: int, env: Mapping[str, str], log: Path, *, workers: int, threads: int,
             config: bool = False, access_log: Path | None = None, host: str = "127.0.0.1",
             options: tuple[str, ...] = ()) -> Server:
    """``options``: more gunicorn command-line options (``bench/scale_out_bench.py``: ``--reuse-port``)."""
    command = [shutil.which("gunicorn") or str(Path(sys.executable).with_name("gunicorn"))]  # or the venv's
    if config:
        command += ["-c", str(ROOT / "deploy" / "gunicorn.conf.py")]
    command += options
    command += ["--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads),
                "--bind", f"127.0.0.1:{port}", "--pythonpath", f"{ROOT},{ROOT / 'bench'}", "--timeout", "60"]
    if access_log is not None:
        command += ["--access-logfile", str(access_log), "--access-logformat", LOG_FORMAT]
    command.append(app)
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=log.open("ab"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    return Server(name, process, f"http://{host}:{port}")


def wait_for(server: Server, path: str, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited: {log.read_text()[-3000:]}")
        try:
            if requests.get(server.url + path, timeout=5).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} did not come up in {timeout} s: {log.read_text()[-3000:]}")


# -- the browser and the two logins ----------------------------------------------------------------------------------

class BenchBrowser(Browser):
    """The test browser, tagging every request with the login's id (its session headers go on every request,
    the cross-site POSTs included) and telling the peers which citizen signs in (``bench_citizen`` cookie, sent
    to both peer hosts, 127.0.0.1 and localhost; the broker on 127.0.0.1 gets it too and ignores it)."""

    def __init__(self, login_id: str, citizen: int = 0) -> None:
        super().__init__(timeout=30.0)
        self.session.headers["X-Bench-Login"] = login_id
        for host in ALLOWED_HOSTS:  # http.cookiejar keeps a dotless host's cookies as <host>.local (RFC 2965 §1)
            domain = host if "." in host else host + ".local"
            self.session.cookies.set(CITIZEN_COOKIE, str(citizen), domain=domain, path="/")


def self_submitting(page: requests.Response) -> tuple[str, dict[str, str]] | None:
    """(action, fields) of an HTTP-POST binding page (one POST form of hidden inputs only), else None."""
    if "<form" not in page.text:
        return None
    forms = lxml.html.document_fromstring(page.text, base_url=page.url).forms
    if len(forms) != 1 or (forms[0].method or "GET").upper() != "POST":
        return None
    fields: dict[str, str] = {}
    for control in forms[0].inputs:
        if control.tag != "input" or (control.get("type") or "").lower() != "hidden":
            if (control.get("type") or "").lower() == "submit" or control.tag == "button":
                continue
            return None
        if control.name:
            fields[control.name] = control.get("value") or ""
    return urljoin(page.url, forms[0].action or page.url), fields


def drive(browser: Browser, url: str, stop: str) -> tuple[str, dict[str, str]]:
    """Follow redirects and self-submitting forms from ``url`` until the next hop goes to ``stop`` (the app):
    (that URL, the form fields it would get; none for a redirect)."""
    page = browser.get(url, follow=False)
    for _ in range(20):
        if page.status_code in REDIRECTS:
            location = urljoin(page.url, page.headers["Location"])
            page.close()
            if location.startswith(stop):
                return location, {}
            page = browser.get(location, follow=False)
            continue
        form = self_submitting(page) if page.status_code == 200 else None
        if form is None:
            raise RuntimeError(f"stuck at {page.url}: {page.status_code} {page.text[:300]!r}")
        action, fields = form
        if action.startswith(stop):
            return action, fields
        page = browser.post(action, fields, follow=False, initiator=page.url)
    raise RuntimeError("more than 20 hops")


@dataclass
class Bench:
    broker_url: str
    sp: TestSp
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks: Any
    app_secret: str
    #: how many citizens the peers know (``bench_citizens``)
    citizens: int = 1
    local: threading.local = field(default_factory=threading.local)
    #: per upstream: how many logins were started, and the citizens whose login started
    started: Counter[str] = field(default_factory=Counter)
    used: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def citizen(self, upstream: str) -> int:
        """The next citizen of ``upstream``'s logins: each in turn, k-th login -> citizen k mod N."""
        with self.lock:
            n = self.started[upstream] % self.citizens
            self.started[upstream] += 1
            self.used[upstream].add(n)
        return n

    def saml_login(self, login_id: str, check: bool = False) -> None:
        request_id, location = self.sp.redirect_request()
        citizen = self.citizen(UPSTREAM)
        with BenchBrowser(login_id, citizen) as browser:
            _, fields = drive(browser, location + "&idp_hint=" + UPSTREAM, self.sp.acs_url)
        response = fields.get("SAMLResponse")
        if response is None or SUCCESS not in base64.b64decode(response).decode():
            raise RuntimeError(f"no successful SAML Response: {fields}")
        if check:  # pysaml2 as the SP: both signatures (xmlsec1), audience, InResponseTo, conditions
            parsed = self.sp.parse(response, request_id)
            mail = op_user(citizen).claims["email"]
            assert parsed is not None and parsed.get_identity().get("mail") == [mail], parsed

    def oidc_login(self, login_id: str, check: bool = False) -> None:
        verifier, state, nonce = generate_token(48), generate_token(20), generate_token(20)
        query = {"response_type": "code", "client_id": APP_ID, "redirect_uri": APP_REDIRECT,
                 "scope": "openid profile email", "state": state, "nonce": nonce, "idp_hint": IDP_UPSTREAM,
                 "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256"}
        url = requests.Request("GET", self.authorization_endpoint, params=query).prepare().url
        assert url is not None
        citizen = self.citizen(IDP_UPSTREAM)
        with BenchBrowser(login_id, citizen) as browser:
            location, _ = drive(browser, url, APP_REDIRECT)
        answer = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        if answer.get("state") != state or "code" not in answer or answer.get("iss") != self.issuer:
            raise RuntimeError(f"bad authorization response: {answer}")
        session = getattr(self.local, "session", None)
        if session is None:  # the app's back channel keeps its connections, as an app server would
            session = self.local.session = requests.Session()
        token = session.post(self.token_endpoint, data={
            "grant_type": "authorization_code", "code": answer["code"], "redirect_uri": APP_REDIRECT,
            "code_verifier": verifier}, auth=(APP_ID, self.app_secret), headers={"X-Bench-Login": login_id},
            timeout=30)
        if token.status_code != 200:
            raise RuntimeError(f"token endpoint: {token.status_code} {token.text[:300]}")
        claims = jwt.decode(token.json()["id_token"], self.jwks, claims_options={
            "iss": {"essential": True, "value": self.issuer}, "aud": {"essential": True, "value": APP_ID},
            "nonce": {"essential": True, "value": nonce}, "sub": {"essential": True}})
        claims.validate(leeway=5)
        if check:
            assert claims.get("email") in (None, idp_user(citizen).attributes["mail"][0]), claims


# -- measuring ------------------------------------------------------------------------------------------------------

@dataclass
class Parties:
    broker: Server
    op: Server
    idp: Server
    database: str  # the broker's application_name at PostgreSQL
    admin_url: str
    redis_pid: int | None
    schema_url: str

    def audit_records(self) -> int:
        """Rows in the broker's hash-chained audit trail (one locked append each, serialized across workers)."""
        engine = create_engine_for(self.schema_url)
        try:
            with engine.connect() as connection:
                return int(connection.execute(text("SELECT count(*) FROM audit_events")).scalar_one())
        finally:
            engine.dispose()

    def accounts(self) -> tuple[int, Counter[str]]:
        """The broker's accounts, and its linked identities per upstream (one of each per citizen and upstream,
        the broker linking nothing here: the citizens' e-mail addresses differ between the peers)."""
        engine = create_engine_for(self.schema_url)
        try:
            with engine.connect() as connection:
                accounts = int(connection.execute(text("SELECT count(*) FROM accounts")).scalar_one())
                rows = connection.execute(text("SELECT upstream, count(*) FROM linked_identities GROUP BY upstream"))
                return accounts, Counter({str(upstream): int(n) for upstream, n in rows})
        finally:
            engine.dispose()

    def postgres_pids(self) -> list[int]:
        return postgres_backends(self.admin_url, self.database)

    def snapshot(self) -> dict[str, dict[int, float]]:
        groups = {"broker": self.broker.pids(), "postgres": self.postgres_pids(),
                  "redis": [self.redis_pid] if self.redis_pid else [],
                  "peers": self.op.pids() + self.idp.pids(), "driver": [os.getpid()]}
        return {name: {pid: cpu_seconds(pid) for pid in pids} for name, pids in groups.items()}


def postgres_backends(admin_url: str, application_name: str) -> list[int]:
    """The process ids of the PostgreSQL backends serving connections named ``application_name``."""
    engine = create_engine_for(admin_url)
    try:
        with engine.connect() as connection:
            return [int(x) for x in connection.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE application_name = :n"), {"n": application_name}).scalars()]
    finally:
        engine.dispose()


def cpu_delta(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    # a process that appeared during the run (a new PostgreSQL backend) counts from zero
    return {name: sum(max(0.0, cpu - before[name].get(pid, 0.0)) for pid, cpu in pids.items())
            for name, pids in after.items()}


def broker_times(access_log: Path, offset: int, prefix: str) -> tuple[dict[str, float], Counter[int], int,
                                                                     Counter[str]]:
    """Per login id (starting with ``prefix``): the sum of the broker's request times; status counts; requests;
    SQL statements and commits (``--count-sql``) per endpoint path."""
    per_login: dict[str, float] = defaultdict(float)
    statuses: Counter[int] = Counter()
    sql: Counter[str] = Counter()
    requests_seen = 0
    with access_log.open("rb") as log:
        log.seek(offset)
        for line in log.read().decode(errors="replace").splitlines():
            match = LOG_LINE.search(line)
            if match is None or not match.group(5).startswith(prefix):
                continue
            per_login[match.group(5)] += float(match.group(4))
            statuses[int(match.group(3))] += 1
            requests_seen += 1
            if match.group(6) != "-":
                statements, commits = match.group(6).split()
                path = re.sub(r"/[A-Za-z0-9_-]{16,}(?=/|$)", "/*", match.group(2))  # login handles
                sql[f"statements {path}"] += int(statements)
                sql[f"commits {path}"] += int(commits)
                sql["statements"] += int(statements)
                sql["commits"] += int(commits)
    return per_login, statuses, requests_seen, sql


def scrape(broker_url: str) -> dict[str, float]:
    """The broker's Prometheus sums (all workers: PROMETHEUS_MULTIPROC_DIR): time per login step and per upstream
    call, in seconds, keyed "step:<name>" / "upstream:<call>"."""
    from prometheus_client.parser import text_string_to_metric_families

    sums: dict[str, float] = defaultdict(float)
    body = requests.get(broker_url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == "broker_login_step_seconds_sum":
                sums["step:" + sample.labels.get("step", "?")] += sample.value
            elif sample.name == "broker_upstream_request_seconds_sum":
                sums["upstream:" + sample.labels.get("call", "?")] += sample.value
    return sums


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def run_level(bench: Bench, parties: Parties, access_log: Path, bridge: str, concurrency: int, logins: int,
              seconds: float) -> dict[str, Any]:
    login = bench.saml_login if bridge == "saml->oidc" else bench.oidc_login
    tag = f"{bridge[:4]}{concurrency}x{secrets.token_hex(3)}"
    login(f"{tag}-first", check=True)  # the first of the run, checked in full
    time.sleep(0.3)  # let the access log lines of the checked login land before the offset is taken
    offset = access_log.stat().st_size
    metrics_before, audit_before = scrape(bench.broker_url), parties.audit_records()
    accounts_before = parties.accounts()[0]
    before, machine_before = parties.snapshot(), machine_busy()
    run = run_bounded(lambda n: login(f"{tag}-{n}"), concurrency, logins, seconds)
    after, machine_after = parties.snapshot(), machine_busy()
    metrics_after, audit_after = scrape(bench.broker_url), parties.audit_records()
    accounts_after = parties.accounts()[0]
    login(f"{tag}-last", check=True)  # and the last
    time.sleep(0.5)  # gunicorn writes access log lines after the response
    per_login, statuses, broker_requests, sql = broker_times(access_log, offset, tag + "-")
    for extra in ("first", "last"):
        per_login.pop(f"{tag}-{extra}", None)
    cpu = cpu_delta(before, after)
    cpu["other"] = max(0.0, (machine_after - machine_before) - sum(cpu.values()))
    done, elapsed, latencies = run.done, run.seconds, run.latencies
    server = sorted(per_login.values())
    return {"bridge": bridge, "concurrency": concurrency, "logins": done, "logins_timed": per_login, "seconds": elapsed,
            "rate": done / elapsed if elapsed else 0.0, "failures": run.failures,
            "p50": pct(latencies, 50), "p95": pct(latencies, 95), "p99": pct(latencies, 99),
            "srv50": pct(server, 50), "srv99": pct(server, 99), "srv_mean": statistics.fmean(server) if server else 0,
            "requests": broker_requests / max(1, len(server)), "statuses": dict(statuses), "cpu": cpu,
            "machine": machine_after - machine_before,
            "metrics": {k: v - metrics_before.get(k, 0.0) for k, v in metrics_after.items()}, "sql": sql,
            "audit": audit_after - audit_before, "new_accounts": accounts_after - accounts_before}


def print_accounts(bench: Bench, parties: Parties) -> None:
    """The broker's accounts against the citizens signed in (a failed login may have signed in none)."""
    accounts, identities = parties.accounts()
    used = {upstream: len(citizens) for upstream, citizens in bench.used.items()}
    verdict = "as expected" if accounts == sum(used.values()) and identities == Counter(used) else "MISMATCH"
    print(f"\naccounts in the broker's database: {accounts}; linked identities per upstream {dict(identities)}; "
          f"distinct citizens whose login started, per upstream {used} (of {bench.citizens}): {verdict}")


def print_table(rows: list[dict[str, Any]], workers: int, threads: int, citizens: int = 1) -> None:
    print()
    print(f"broker: gunicorn {workers} workers x {threads} threads (gthread), PostgreSQL + Redis sessions; "
          f"peers: 1 gunicorn worker each; driver: this process; {citizens} citizen(s), taken in turn")
    header = (f"{'bridge':<11} {'conc':>4} {'logins':>6} {'/s':>6} {'p50':>6} {'p95':>6} {'p99':>6} | "
              f"{'brk50':>6} {'brk99':>6} {'req':>4} | {'brkCPU':>6} | {'broker':>6} {'pg':>5} {'redis':>5} "
              f"{'peers':>5} {'driver':>6} {'other':>5} {'cores':>5}")
    print(header)
    print(f"{'':<11} {'':>4} {'':>6} {'':>6} {'e2e latency, ms':>20} | {'broker ms/login':>18} | "
          f"{'ms/login':>6} | {'share of the busy CPU, %':>42}")
    print("-" * len(header))
    for r in rows:
        cpu, total = r["cpu"], max(1e-9, sum(r["cpu"].values()))
        share = {k: 100 * v / total for k, v in cpu.items()}
        print(f"{r['bridge']:<11} {r['concurrency']:>4} {r['logins']:>6} {r['rate']:>6.1f} {r['p50'] * 1e3:>6.1f} "
              f"{r['p95'] * 1e3:>6.1f} {r['p99'] * 1e3:>6.1f} | {r['srv50'] * 1e3:>6.1f} {r['srv99'] * 1e3:>6.1f} "
              f"{r['requests']:>4.1f} | {cpu['broker'] / max(1, r['logins']) * 1e3:>6.1f} | "
              f"{share['broker']:>6.1f} {share['postgres']:>5.1f} {share['redis']:>5.1f} {share['peers']:>5.1f} "
              f"{share['driver']:>6.1f} {share['other']:>5.1f} {r['machine'] / r['seconds']:>5.2f}")
    print()
    print("e2e: the browser's whole login (and for oidc->saml the app's token request and ID token check); brk50/99: "
          "gunicorn's request time summed over the login's broker requests (req per login), back-channel calls "
          "upstream included; brkCPU: CPU of the broker's gunicorn processes per login; shares: of the CPU the "
          "machine spent during the run (pg = the broker's PostgreSQL backends, redis = the whole Redis server, "
          "other = everything else on the machine); cores: busy cores on average (of 2).")
    print()
    print("broker time per login from its /metrics (mean ms/login): each login step, the upstream HTTP calls "
          "(back channel to the OP), and the server time without them")
    for r in rows:
        logins = max(1, r["logins"])
        metric = {k: v * 1e3 / logins for k, v in sorted(r["metrics"].items()) if v > 0}
        upstream = sum(v for k, v in metric.items() if k.startswith("upstream:"))
        steps = ", ".join(f"{k[5:]} {v:.1f}" for k, v in metric.items() if k.startswith("step:"))
        calls = ", ".join(f"{k[9:]} {v:.1f}" for k, v in metric.items() if k.startswith("upstream:"))
        print(f"  {r['bridge']:<11} c{r['concurrency']:<3} server {r['srv_mean'] * 1e3:5.1f}, minus upstream calls "
              f"{r['srv_mean'] * 1e3 - upstream:5.1f} | steps: {steps} | upstream: {calls or '-'} | audit records "
              f"{r['audit'] / logins:.1f} | new accounts {r['new_accounts']}")
    if any(r["sql"] for r in rows):
        print("\nSQL per login (--count-sql: statements / commits the broker sent, by request path)")
        for r in rows:
            logins = max(1, len(r["logins_timed"]))
            sql = r["sql"]
            paths = sorted({k.split(" ", 1)[1] for k in sql if " " in k})
            detail = ", ".join(f"{p} {sql['statements ' + p] / logins:.1f}/{sql['commits ' + p] / logins:.1f}"
                               for p in paths)
            print(f"  {r['bridge']:<11} c{r['concurrency']:<3} {sql['statements'] / logins:5.1f} statements, "
                  f"{sql['commits'] / logins:4.1f} commits | {detail}")
    for r in rows:
        bad = {s: n for s, n in r["statuses"].items() if s >= 400}
        if r["failures"] or bad:
            print(f"  {r['bridge']} c{r['concurrency']}: {len(r['failures'])} failed logins, broker error statuses "
                  f"{bad}; first: {r['failures'][:2]}")


# -- profiling ----------------------------------------------------------------------------------------------------

def profile(bench: Bench, parties: Parties, seconds: float, folder: Path) -> None:
    spy = shutil.which("py-spy")
    if spy is None:
        print("\npy-spy is not installed (pip install py-spy): no profile")
        return
    out = folder / "profile.txt"
    stop = threading.Event()

    def load(index: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            with contextlib.suppress(Exception):
                (bench.saml_login if index % 2 else bench.oidc_login)(f"prof-{index}-{n}")

    pool = ThreadPoolExecutor(16)
    futures = [pool.submit(load, i) for i in range(16)]
    time.sleep(1.0)
    command = [spy, "record", "--pid", str(parties.broker.process.pid), "--subprocesses", "--duration",
               str(int(seconds)), "--rate", "200", "--function", "--gil", "--nonblocking", "--format", "raw",
               "-o", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    stop.set()
    for future in futures:
        future.result()
    pool.shutdown()
    if not out.exists():
        print(f"\npy-spy failed: {result.stderr[-1000:]}")
        return
    cumulative: Counter[str] = Counter()
    own: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        for frame in {short(f) for f in frames}:
            if not any(marker in frame for marker in FRAMEWORK):
                cumulative[frame] += count
        own[short(frames[-1])] += count
        areas[area(frames)] += count
    print(f"\npy-spy --gil: {total} samples of the broker's gunicorn worker threads holding the GIL (running Python "
          f"or C code under it) over {seconds:.0f} s at 200 Hz, concurrency 16, both bridges interleaved")
    print("where the broker's CPU goes (by the library of the innermost Python frame; % of samples):")
    for name, count in areas.most_common():
        print(f"  {100 * count / total:5.1f}%  {name}")
    print("top 15 by cumulative time (thread, gunicorn, Flask and contextlib wrappers left out):")
    for frame, count in cumulative.most_common(15):
        print(f"  {100 * count / total:5.1f}%  {frame}")
    print("top 15 by own time:")
    for frame, count in own.most_common(15):
        print(f"  {100 * count / total:5.1f}%  {frame}")
    print(f"(raw stacks: {out})")


FRAMEWORK = ("(threading.py", "(concurrent/futures/", "(gunicorn/", "(flask/app.py", "(flask_limiter/",
             "(contextlib.py", "(werkzeug/middleware/", "(broker/web/ops/request_ids.py",
             "(broker/web/ops/access_log.py")
AREAS = (  # (what, path markers); the first match of the innermost frame wins
    ("PostgreSQL client: SQLAlchemy + psycopg", ("sqlalchemy/", "psycopg")),
    ("Redis client (sessions)", ("redis/", "flask_session/", "cachelib/")),
    ("SAML XML: pysaml2, lxml, xmlsec signing/verifying", ("saml2/", "xmlsec_backend", "lxml", "xml/etree/",
                                                           "broker/saml/", "broker/upstream/saml",
                                                           "broker/downstream/saml")),
    ("JOSE / JWT / cryptography (authlib, joserfc)", ("authlib/", "joserfc/", "cryptography/", "broker/keys/",
                                                     "broker/oidc/")),
    ("templates (jinja2)", ("jinja2/", "markupsafe/", ".html")),
    ("Flask / werkzeug request handling", ("flask/", "werkzeug/", "flask_limiter/", "limits/", "flask_wtf/",
                                           "babel/", "contextlib.py")),
    ("gunicorn, sockets, HTTP", ("gunicorn/", "socket.py", "selectors.py", "http/", "requests/", "urllib3/")),
    ("Prometheus metrics", ("prometheus_client/",)),
    ("logging, json", ("logging/", "json/", "logging_setup")),
    ("the broker's own code", ("broker/",)),
)


def area(frames: list[str]) -> str:
    leaf = frames[-1]
    for name, markers in AREAS:
        if any(marker in leaf for marker in markers):
            return name
    return "other (stdlib, small libraries)"


def short(frame: str) -> str:
    """'function (path/to/file.py:12)' with the path shortened to the package."""
    match = re.match(r"(.*) \((.*):(\d+)\)$", frame)
    if match is None:
        return frame
    path = match.group(2)
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match.group(1)} ({path}:{match.group(3)})"


# -- setup -------------------------------------------------------------------------------------------------------

def write_instance(folder: Path, keys: Path, broker_url: str, database_url: str, op_url: str, idp_url: str,
                   redis_url: str) -> tuple[TestSp, str]:
    """The broker's instance folder (as ``tests.flows.federation``): OP "op", SAML IdP "city", SP "sp1" and the
    OIDC app; returns the SP and the app's client secret."""
    _write_instance(folder, keys, broker_url, database_url, op_url, redis_url,
                    extra_config="\n[limits]\nenabled = false\n" + ORDINARY_RISK)
    idp_keys = generate_keyring(keys / "city-idp", "bench city idp", bits=2048)
    idp = TestIdp(idp_url, str(idp_keys.key_file), str(idp_keys.cert_file))
    (folder / "metadata" / "saml-idp").mkdir(parents=True, exist_ok=True)
    (folder / "metadata" / "saml-idp" / "city.xml").write_text(idp.metadata())
    (folder / "metadata" / "upstreams" / "city.json").write_text(json.dumps({
        "name": "city", "protocol": "saml", "entity_id": idp_url, "display_name": "City ID",
        "options": {"email_verified": "true"}}))
    sp = TestSp("http://127.0.0.1:9/sp1", SpKeys(keys / "sp1" / "signing.key", keys / "sp1" / "signing.crt"))
    (folder / "metadata" / "saml-sp" / "sp1.xml").write_text(sp.metadata())
    secret = secrets.token_urlsafe(32)
    (folder / "metadata" / "oidc-clients").mkdir(exist_ok=True)
    (folder / "metadata" / "oidc-clients" / f"{APP_ID}.json").write_text(json.dumps({
        "client_id": APP_ID, "redirect_uris": [APP_REDIRECT], "token_endpoint_auth_method": "client_secret_basic",
        "client_secret_hash": hash_secret(secret), "scope": "openid profile email"}))
    return sp, secret


def redis_keys(redis_url: str) -> set[bytes] | None:
    """The ``broker:`` keys in the spare Redis database (None if Redis cannot be reached)."""
    import redis

    try:
        client = redis.Redis.from_url(redis_url)
        try:
            return set(client.scan_iter(match="broker:*", count=1000))
        finally:
            client.close()
    except Exception:
        return None


def redis_cleanup(redis_url: str, before: set[bytes]) -> int:
    """Delete the ``broker:`` keys this run added (sessions; their TTLs would expire them anyway)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = [k for k in client.scan_iter(match="broker:*", count=1000) if k not in before]
        for i in range(0, len(keys), 500):
            client.delete(*keys[i:i + 500])
        return len(keys)
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=400, help="at most this many logins per run")
    parser.add_argument("--seconds", type=float, default=10.0, help="at most this long per run")
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated concurrency levels")
    parser.add_argument("--bridges", default="saml->oidc,oidc->saml", help="which bridges, comma-separated")
    parser.add_argument("--workers", type=int, default=3, help="broker gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per broker worker")
    parser.add_argument("--peer-threads", type=int, default=8, help="threads of each peer's one worker")
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
        help="PostgreSQL (a throw-away schema in it is used and dropped)")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11"),
                        help="Redis for the broker's sessions (a spare database number: its broker:* keys are "
                             "deleted at the end)")
    parser.add_argument("--profile-seconds", type=float, default=6.0, help="py-spy sampling time (0: no profile)")
    parser.add_argument("--synchronous-commit-off", action="store_true",
                        help="the broker's PostgreSQL sessions commit without waiting for the WAL flush (to measure "
                             "what the fsync per commit costs; not a recommendation for the audit trail)")
    parser.add_argument("--count-sql", action="store_true",
                        help="count the SQL statements and commits per login (SQLAlchemy events in the broker)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, profile)")
    parser.add_argument("--citizens", type=int, default=DEFAULT_CITIZENS,
                        help="how many different citizens sign in, in turn (1: every login the same one)")
    args = parser.parse_args()
    if args.citizens < 1:
        parser.error("--citizens must be at least 1")
    levels = [int(x) for x in args.concurrency.split(",")]
    bridges = [b for b in args.bridges.split(",") if b]
    scratch = Path(tempfile.mkdtemp(prefix="gunicorn-bench-"))
    schema = postgres_schema(args.database_url)
    servers: list[Server] = []
    redis_before = redis_keys(args.redis_url)
    try:
        app_name = f"bench-broker-{secrets.token_hex(4)}"
        url = make_url(next(schema))
        options = str(url.query["options"]) + (" -csynchronous_commit=off" if args.synchronous_commit_off else "")
        database_url = url.update_query_dict({"application_name": app_name, "options": options}).render_as_string(
            hide_password=False)
        keys = make_keys(scratch / "keys")
        instance = scratch / "instance"
        ports = {name: free_port() for name in ("broker", "op", "idp")}
        broker_url, op_url = f"http://127.0.0.1:{ports['broker']}", f"http://127.0.0.1:{ports['op']}"
        idp_url = f"http://localhost:{ports['idp']}"  # another site than the broker, as in production
        sp, app_secret = write_instance(instance, keys, broker_url, database_url, op_url, idp_url, args.redis_url)
        upgrade(database_url)

        access_log = scratch / "broker-access.log"
        access_log.touch()
        prom = scratch / "prometheus"
        prom.mkdir()
        broker_log = scratch / "broker.log"
        broker = gunicorn("broker", "bench_peers:counted_broker_app()" if args.count_sql else "broker:create_app()",
                          ports["broker"],
                          {"BROKER_CONFIG": str(instance / "broker.toml"), "PROMETHEUS_MULTIPROC_DIR": str(prom)},
                          broker_log, workers=args.workers,
                          threads=args.threads, config=True, access_log=access_log)
        servers.append(broker)
        op_log = scratch / "op.log"
        op = gunicorn("op", "bench_peers:op_app()", ports["op"], {
            "BENCH_OP_ISSUER": op_url, "BENCH_OP_CLIENT_ID": CLIENT_ID,
            "BENCH_OP_SECRET_FILE": str(instance / "certs" / "op-client.secret"),
            "BENCH_OP_REDIRECT_URI": f"{broker_url}/upstream/oidc/{UPSTREAM}/callback",
            CITIZENS_ENV: str(args.citizens)},
            op_log, workers=1, threads=args.peer_threads)
        servers.append(op)
        wait_for(broker, "/healthz", broker_log)
        sp_metadata = scratch / "broker-sp.xml"
        sp_metadata.write_text(requests.get(broker_url + "/saml2/sp/metadata", timeout=10).text)
        sp.connect(requests.get(broker_url + "/saml2/idp/metadata", timeout=10).text)
        idp_log = scratch / "idp.log"
        idp = gunicorn("idp", "bench_peers:idp_app()", ports["idp"], {
            "BENCH_IDP_ENTITY_ID": idp_url, "BENCH_IDP_KEY": str(keys / "city-idp" / "signing.key"),
            "BENCH_IDP_CERT": str(keys / "city-idp" / "signing.crt"), "BENCH_IDP_SP_METADATA": str(sp_metadata),
            CITIZENS_ENV: str(args.citizens)},
            idp_log, workers=1, threads=args.peer_threads, host="localhost")
        servers.append(idp)
        wait_for(op, "/.well-known/openid-configuration", op_log)
        wait_for(idp, "/sso/redirect", idp_log)

        discovery = requests.get(broker_url + "/.well-known/openid-configuration", timeout=10).json()
        bench = Bench(broker_url, sp, discovery["issuer"], discovery["authorization_endpoint"],
                      discovery["token_endpoint"],
                      JsonWebKey.import_key_set(requests.get(discovery["jwks_uri"], timeout=10).json()), app_secret,
                      args.citizens)
        redis_pid = None
        try:
            import redis

            redis_pid = int(redis.Redis.from_url(args.redis_url).info("server")["process_id"])
            if not Path(f"/proc/{redis_pid}").exists():
                redis_pid = None
        except Exception:
            pass
        parties = Parties(broker, op, idp, app_name, args.database_url, redis_pid, database_url)
        print(f"broker {broker_url} (gunicorn {args.workers}x{args.threads} gthread), demo OP {op_url}, SAML IdP "
              f"{idp_url}; PostgreSQL options {make_url(database_url).query.get('options')}; sessions "
              f"{args.redis_url}; {args.citizens} citizen(s)")
        # Warm-up: every citizen signs in once through each bridge, so the measured logins are of returning
        # citizens, as most of a city's are (a first login also creates the account); it fills every worker's
        # caches too.
        bench.saml_login("warm-check", check=True)
        bench.oidc_login("warm-check", check=True)

        def both(n: int) -> None:
            bench.saml_login(f"warm-{n}")
            bench.oidc_login(f"warm-{n}")

        warm = run_bounded(both, 8, max(6, args.citizens), 600)
        if warm.failures:
            raise RuntimeError(f"warm-up logins failed: {warm.failures[:3]}")
        rows = []
        for bridge in bridges:
            for level in levels:
                row = run_level(bench, parties, access_log, bridge, level, args.logins, args.seconds)
                rows.append(row)
                print(f"  {bridge} c{level}: {row['logins']} logins, {row['rate']:.1f}/s, "
                      f"{len(row['failures'])} failures", flush=True)
        print_table(rows, args.workers, args.threads, args.citizens)
        if args.profile_seconds > 0:
            profile(bench, parties, args.profile_seconds, scratch)
        print_accounts(bench, parties)
    finally:
        for server in reversed(servers):
            server.stop()
        for _ in schema:  # drops the PostgreSQL schema
            pass
        if redis_before is not None:
            try:
                redis_cleanup(args.redis_url, redis_before)
            except Exception as exc:
                print(f"Redis cleanup failed: {exc}")
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
