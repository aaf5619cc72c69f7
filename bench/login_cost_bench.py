"""What one login costs the broker, per bridge, with and without the discovery page: CPU, requests, SQL, round trips.

    python bench/login_cost_bench.py [--logins 30] [--seconds 60] [--scenarios S1,S1d,S2,S2d,S3,S3d,S4,S4d]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--redis-url redis://127.0.0.1:6379/12]
        [--by-request]

Scenarios, each a complete login of a fresh browser (no SSO session), run one after another (concurrency 1, so
every count belongs to one login): S1 SAML app -> OpenID provider; S2 OIDC app -> SAML IdP; S3 SAML app -> SAML
IdP; S4 OIDC app -> OpenID provider. "S1" names the upstream by a hint (``idp_hint``); "S1d" gets the discovery
page (two upstreams offered, the demo OpenID provider "op" and the pysaml2 IdP "city") and the browser chooses.
The SAML apps are pysaml2 SPs (every Response's status is checked; the first and last of each scenario are
parsed by pysaml2 with signatures checked by ``xmlsec1``); the OIDC apps are authlib relying parties that redeem
the code, validate the ID token against the broker's JWKS and call UserInfo (their back-channel requests to the
broker are part of the login and counted).

Everything runs in this process on 127.0.0.1 (werkzeug threaded servers, the broker over https as in
``tests.flows.federation``), on PostgreSQL (a throw-away schema, dropped afterwards) reached through a counting
proxy, with browser sessions, pending login state and rate-limit counters in Redis (``session_type = "redis"``:
the limits follow ``redis_url``), as in production. Limits stay on, set high enough for one address.

Per login, around the broker app only (``bench/cost_counters.py`` says exactly what is counted): requests;
broker CPU (the sum of each broker request's thread CPU; median and p90 over the logins); SQL statements,
commits and rollbacks on the broker's request threads; PostgreSQL round trips measured by the proxy; Redis round
trips and commands made on the broker's request threads. Counts are medians (they rarely vary). The first login
of each scenario (caches, account creation) is a warm-up and not counted; a login that fails is left out of
the figures and counted in "failed". Each scenario is bounded by ``--logins`` and ``--seconds``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore", module="saml2")
warnings.filterwarnings("ignore", module="authlib")

import requests  # noqa: E402
from sqlalchemy import make_url  # noqa: E402

from bench.bench_config import ORDINARY_RISK  # noqa: E402
from bench.cost_counters import CostMeter, Costs, RoundTripProxy  # noqa: E402
from tests.databases import postgres_schema  # noqa: E402
from tests.flows.federation import ExtraUpstream, Federation, make_keys, running_federation, saml_status  # noqa: E402
from tests.flows.oidc_peers import RelyingParty, relying_party  # noqa: E402
from tests.flows.saml_to_saml_support import form_index  # noqa: E402
from tests.flows.saml_upstream import CityIdp  # noqa: E402
from tests.peers.browser import Browser  # noqa: E402

SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
NAMES = {"S1": "SAML app -> OIDC provider", "S2": "OIDC app -> SAML IdP", "S3": "SAML app -> SAML IdP",
         "S4": "OIDC app -> OIDC provider"}
UPSTREAM_OF = {"S1": "op", "S2": "city", "S3": "city", "S4": "op"}


@dataclass
class World:
    federation: Federation
    rp: RelyingParty

    def login(self, scenario: str, check: bool) -> None:
        """One complete login of a fresh browser; raises unless the app got what it asked for."""
        bridge, discovery = scenario[:2], scenario.endswith("d")
        upstream = UPSTREAM_OF[bridge]
        with Browser(timeout=30.0) as browser:
            if bridge in ("S1", "S3"):
                request_id, location = self.federation.sps["sp1"].redirect_request()
                page = browser.get(location if discovery else f"{location}&idp_hint={upstream}")
            else:
                page = browser.get(f"{self.rp.url}/login", params=None if discovery else {"idp_hint": upstream})
            if discovery:
                if "/upstream/op" not in page.text or "/upstream/city" not in page.text:
                    raise RuntimeError(f"no discovery page offering both upstreams: {page.status_code} {page.url}")
                page = browser.submit(page, form=form_index(page, f"/upstream/{upstream}"))
            for _ in range(4):  # the IdP's POST to the ACS, the broker's same-site repost, a form_post answer
                if not browser.is_self_submitting(page) or "http://127.0.0.1:9/" in page.text:
                    break
                page = browser.auto_submit(page)
            if bridge in ("S1", "S3"):
                fields = browser.form_fields(page)
                if "SAMLResponse" not in fields or saml_status(fields)[0] != SUCCESS:
                    raise RuntimeError(f"no successful SAML Response: {page.status_code} {page.text[:300]!r}")
                if check:  # pysaml2 as the SP: both signatures (xmlsec1), audience, InResponseTo, conditions
                    identity = self.federation.sps["sp1"].parse(fields["SAMLResponse"], request_id).get_identity()
                    assert identity.get("mail"), identity
            else:
                outcome = self.rp.last
                if (page.status_code != 200 or not page.url.startswith(self.rp.redirect_uri)
                        or outcome.error is not None or not outcome.userinfo or not outcome.id_token_claims):
                    raise RuntimeError(f"OIDC login did not complete: {page.status_code} {page.text[:300]!r}")


@dataclass(frozen=True)
class Row:
    scenario: str
    logins: int
    failures: list[str]
    cpu_p50: float
    cpu_p90: float
    median: Costs
    #: "METHOD /path" -> the mean costs per counted login of that request
    by_request: dict[str, Costs]


def measure(world: World, meter: CostMeter, scenario: str, logins: int, seconds: float) -> Row:
    """Counted logins of one scenario; a login that fails is kept out of the figures, counted and shown, so a
    change that breaks some logins shows beside the figures instead of stopping the run."""
    per_login: list[Costs] = []
    failures: list[str] = []
    deadline = time.monotonic() + seconds
    seen: list[tuple[str, Costs]] = []  # the counted logins' broker requests

    def attempt(check: bool) -> Costs | None:
        before, first = meter.snapshot(), len(meter.per_request)
        try:
            world.login(scenario, check=check)
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}"[:200])
            return None
        if not check:
            seen.extend(meter.per_request[first:])
        return meter.snapshot() - before

    while attempt(check=True) is None and len(failures) < 3:  # warm-up, checked in full
        pass
    while len(per_login) < logins and time.monotonic() < deadline and len(failures) <= logins:
        costs = attempt(check=False)
        if costs is not None:
            per_login.append(costs)
    attempt(check=True)
    if not per_login:
        return Row(scenario, 0, failures, float("nan"), float("nan"), Costs(), {})
    by_request: dict[str, Costs] = {}
    for path, costs in seen:
        by_request[path] = by_request.get(path, Costs()) + costs
    by_request = {path: costs.scaled(1 / len(per_login)) for path, costs in by_request.items()}
    cpu = sorted(c.cpu for c in per_login)
    median = Costs(**{f.name: statistics.median(getattr(c, f.name) for c in per_login) for f in fields(Costs)})
    return Row(scenario, len(per_login), failures, cpu[len(cpu) // 2], cpu[min(len(cpu) - 1, int(len(cpu) * 0.9))],
               median, by_request)


def print_table(rows: list[Row], by_request: bool) -> None:
    header = (f"{'scenario':<41} {'logins':>6} {'failed':>6} {'req':>4} {'CPU ms p50':>10} {'p90':>6} {'stmts':>6} "
              f"{'begins':>6} {'commits':>7} {'rollbk':>6} {'ckouts':>6} {'PG trips':>8} {'Redis trips':>11} "
              f"{'Redis cmds':>10}")
    print(header)
    print("-" * len(header))
    for r in rows:
        m = r.median
        name = f"{r.scenario:<4}{NAMES[r.scenario[:2]]}, " + ("discovery" if r.scenario.endswith("d") else "hint")
        print(f"{name:<41} {r.logins:>6} {len(r.failures):>6} {m.requests:>4g} {r.cpu_p50 * 1e3:>10.1f} "
              f"{r.cpu_p90 * 1e3:>6.1f} {m.statements:>6g} {m.begins:>6g} {m.commits:>7g} {m.rollbacks:>6g} "
              f"{m.checkouts:>6g} {m.pg_trips:>8g} {m.redis_trips:>11g} {m.redis_commands:>10g}")
    if by_request:
        print("\nper broker request, mean per login: CPU ms, statements, commits, PG round trips, Redis round trips")
        for r in rows:
            print(f"  {r.scenario}")
            for path, c in r.by_request.items():
                print(f"    {path[:60]:<60} {c.cpu * 1e3:6.1f} {c.statements:5.1f} {c.commits:4.1f} {c.pg_trips:5.1f} "
                      f"{c.redis_trips:5.1f}")
    for r in rows:
        if r.failures:
            print(f"  {r.scenario} failures (not counted): {r.failures[:2]}")
    print("\nmedians per login (CPU: p50 and p90). req: broker requests; CPU: the broker request threads' CPU; "
          "stmts/begins/commits/rollbk: SQLAlchemy events on broker request threads (rollbk excludes the pool's "
          "reset on return); ckouts: pool checkouts; PG trips: client->server round trips "
          "through the counting proxy (all broker connections); Redis trips/cmds: redis-py calls on broker "
          "request threads. Provisional on a shared machine: compare runs made within the same few minutes.")


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=30, help="at most this many counted logins per scenario")
    parser.add_argument("--seconds", type=float, default=60.0, help="at most this long per scenario")
    parser.add_argument("--scenarios", default="S1,S1d,S2,S2d,S3,S3d,S4,S4d", help="comma-separated")
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="PostgreSQL (a throw-away schema in it is used and dropped)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12",
                        help="Redis for sessions, pending state and limits (a spare database number)")
    parser.add_argument("--by-request", action="store_true", help="also print the costs of each broker request")
    args = parser.parse_args()
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = [s for s in scenarios if s[:2] not in NAMES or s[2:] not in ("", "d")]
    if unknown:
        parser.error(f"unknown scenarios {unknown}")
    from bench.gunicorn_bench import redis_cleanup, redis_keys

    redis_before = redis_keys(args.redis_url)
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        folder = Path(scratch)
        schema: Iterator[str] = postgres_schema(args.database_url)
        schema_url = make_url(next(schema))
        stack.callback(lambda: [None for _ in schema])  # drops the schema
        proxy = RoundTripProxy((schema_url.host or "127.0.0.1", schema_url.port or 5432))
        stack.callback(proxy.close)
        proxied = schema_url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        city = CityIdp(folder / "idp-keys", options={"email_verified": "true"})
        high = "1000000/minute"
        limits = f'\n[limits]\nper_ip = "{high}"\nper_upstream = "{high}"\nper_downstream = "{high}"\n'
        limits += ORDINARY_RISK
        federation = stack.enter_context(running_federation(
            folder / "instance", make_keys(folder / "keys"), proxied, redis_url=args.redis_url,
            extra_upstreams=(ExtraUpstream("city", city.build, host="localhost"),), extra_config=limits))
        assert city.idp is not None
        city.idp.connect(requests.get(federation.url + "/saml2/sp/metadata", timeout=10).text)
        rp = stack.enter_context(relying_party(federation))
        meter = CostMeter(federation.broker_late.target, proxy)  # type: ignore[arg-type]
        stack.callback(meter.close)
        federation.broker_late.target = meter
        world = World(federation, rp)
        print(f"broker {federation.url}; PostgreSQL {schema_url.host}:{schema_url.port} via a counting proxy; "
              f"Redis {args.redis_url} (sessions, pending state, limits); {args.logins} logins / {args.seconds:g} s "
              "at most per scenario, one at a time", flush=True)
        rows = []
        for scenario in scenarios:
            rows.append(measure(world, meter, scenario, args.logins, args.seconds))
            print(f"  {scenario}: {rows[-1].logins} logins", flush=True)
        print()
        print_table(rows, args.by_request)
    if redis_before is not None:
        redis_cleanup(args.redis_url, redis_before)

if __name__ == "__main__":
    main()
