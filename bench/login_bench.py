"""Full logins per second on this machine, through either bridge into the OpenID provider upstream.

``--bridge saml`` (default): a pysaml2 SP signs a Redirect-binding AuthnRequest, a fresh browser (no SSO
session) goes through the broker to the authlib OpenID provider and back, the broker verifies the ID token,
finds the account and posts back a signed SAML Response. ``--bridge oidc``: an authlib relying party sends
the fresh browser to the broker's authorization endpoint with PKCE, and after the upstream sign-in redeems
the code at the broker's token endpoint, validates the ID token against the broker's JWKS and calls UserInfo.
Everything runs in this process on 127.0.0.1 (werkzeug threaded servers), so the figure is for broker +
provider + clients together on one interpreter; the broker's own share is measured by a WSGI timer.

    python bench/login_bench.py [--bridge saml|oidc] [--logins 300] [--seconds 30] [--database-url URL]

Loops are bounded by both count and time. Every login's end is checked (a SAML Response, which the SP
validates with the xmlsec1 program for the first and last of each run; or the RP's verified ID token and
UserInfo), so a broken login cannot be counted as fast.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_config import ORDINARY_RISK
from tests.databases import postgres_schema
from tests.flows.federation import Federation, make_keys, running_federation
from tests.flows.oidc_peers import RelyingParty, relying_party
from tests.flows.test_oidc_to_oidc import sign_in
from tests.peers.browser import Browser


class BrokerTimer:
    """WSGI middleware summing wall time spent inside the broker (back-channel calls upstream included)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app, self.total, self.lock = app, 0.0, threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        body = list(self.app(environ, start_response))
        with self.lock:
            self.total += time.perf_counter() - started
        return body


def one_login(federation: Federation, check: bool, rp: RelyingParty | None = None) -> float:
    started = time.perf_counter()
    with Browser() as browser:
        if rp is not None:
            page = sign_in(browser, rp)
            if page.status_code != 200 or page.json() != {"ok": True}:
                raise RuntimeError(f"OIDC login did not complete: {page.status_code} {page.text[:200]}")
            return time.perf_counter() - started
        request_id, page = federation.login(browser)
        fields = browser.form_fields(page)
        if check:
            assert federation.sps["sp1"].parse(fields["SAMLResponse"], request_id) is not None
        elif "SAMLResponse" not in fields:
            raise RuntimeError("login did not end with a SAML Response")
    return time.perf_counter() - started


def run(federation: Federation, timer: BrokerTimer, concurrency: int, logins: int, seconds: float,
        rp: RelyingParty | None) -> None:
    one_login(federation, check=True, rp=rp)
    timer.total = 0.0
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        while time.monotonic() < deadline:
            with lock:
                if len(latencies) >= logins:
                    return
                latencies.append(-1.0)
                slot = len(latencies) - 1
            latency = one_login(federation, check=False, rp=rp)
            with lock:
                latencies[slot] = latency

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(concurrency)))
    elapsed = time.perf_counter() - started
    done = [x for x in latencies if x >= 0]
    one_login(federation, check=True, rp=rp)
    quantiles = statistics.quantiles(done, n=100)
    print(f"concurrency {concurrency:>2}: {len(done):>4} logins in {elapsed:5.1f} s = {len(done) / elapsed:6.1f} "
          f"logins/s; latency p50 {quantiles[49] * 1000:6.1f} ms, p95 {quantiles[94] * 1000:6.1f} ms, "
          f"p99 {quantiles[98] * 1000:6.1f} ms; broker time {timer.total / len(done) * 1000:5.1f} ms/login")


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per hop would drown the figures
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bridge", choices=("saml", "oidc"), default="saml", help="the downstream protocol")
    parser.add_argument("--logins", type=int, default=300, help="at most this many logins per run")
    parser.add_argument("--seconds", type=float, default=30.0, help="at most this long per run")
    parser.add_argument("--no-limits", action="store_true", help="switch the rate limiter off (to measure its cost)")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL URL (used in a throwaway schema); default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        database = postgres_schema(args.database_url) if args.database_url else iter([f"sqlite:///{folder / 'b.db'}"])
        database_url = next(database)
        # Limits stay on (their cost is part of a login) but high enough for one address sending every login.
        high = "1000000/minute"
        limits = ("\n[limits]\nenabled = false\n" if args.no_limits else
                  f'\n[limits]\nper_ip = "{high}"\nper_upstream = "{high}"\nper_downstream = "{high}"\n')
        limits += ORDINARY_RISK
        with running_federation(folder / "instance", make_keys(folder / "keys"), database_url,
                                extra_config=limits) as federation:
            late = federation.broker_late
            timer = BrokerTimer(late.target)  # type: ignore[arg-type]
            late.target = timer
            print(f"bridge: {args.bridge}; database: {database_url.split('@')[-1].split('?')[0]}; "
                  f"{federation.accounts()} accounts before")
            with ExitStack() as stack:
                rp = stack.enter_context(relying_party(federation)) if args.bridge == "oidc" else None
                for concurrency in (1, 4):
                    run(federation, timer, concurrency, args.logins, args.seconds, rp)
            print(f"accounts after: {federation.accounts()} (one citizen, so one account)")
        for _ in database:  # drops the PostgreSQL schema
            pass


if __name__ == "__main__":
    main()
