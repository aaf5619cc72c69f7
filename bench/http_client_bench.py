"""CPU per upstream call: requests.Session (before issue 21) against the urllib3 pool (``UpstreamHttp``).

A threaded HTTP/1.1 server on 127.0.0.1 (keep-alive, ``tests/upstream/keepalive_support.py``) answers a small
JSON object (a UserInfo-sized body). Each client makes N GETs through the broker's own call path: before, the
code of ``oidc_http.call`` as it was (``session.request(..., allow_redirects=False, stream=True)``, the body
read in 64 KiB chunks, then parsed); after, ``oidc_http.call`` on ``UpstreamHttp``. The two alternate in
rounds so both see the same machine. Figures per call: CPU of the calling thread (``time.thread_time``: the
server's threads are not counted) and wall time, p50 of the rounds' means and the overall mean; and how many
connections each client opened.

    python bench/http_client_bench.py [--calls 500] [--rounds 5] [--https] [--close]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from broker.upstream import oidc_http
from broker.upstream.http_pool import UpstreamHttp
from tests.peers.tls import throwaway_ca
from tests.upstream.keepalive_support import KeepAliveServer

BODY = json.dumps({"sub": "alice-0001", "email": "alice@example.org", "email_verified": True,
                   "given_name": "Alice", "family_name": "Anders", "name": "Alice Anders"}).encode()
HEADERS = {"Authorization": "Bearer 2YotnFZFEjr1zCsicMWpAA", "Accept": "application/json"}


def before(session: requests.Session, url: str) -> Any:
    """``oidc_http.call`` as it was before issue 21 (requests, streamed and bounded, then parsed)."""
    with session.request("GET", url, headers=dict(HEADERS), timeout=10, allow_redirects=False,
                         stream=True) as response:
        chunks, size = [], 0
        for chunk in response.iter_content(chunk_size=65536):
            size += len(chunk)
            if size > oidc_http.MAX_BODY_BYTES:
                raise ValueError("too large")
            chunks.append(chunk)
        status = response.status_code
        _ = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    assert status == 200
    return json.loads(b"".join(chunks))


def after(http: UpstreamHttp, url: str) -> Any:
    reply = oidc_http.call(http, "GET", url, what="bench UserInfo", timeout=10, headers=HEADERS)
    assert reply.status == 200
    return reply.body


def measure(call: Callable[[], Any], calls: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per call over ``calls`` calls."""
    cpu, wall = time.thread_time(), time.perf_counter()
    for _ in range(calls):
        call()
    return (time.thread_time() - cpu) * 1000 / calls, (time.perf_counter() - wall) * 1000 / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="GETs per client in all")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds the calls are split into")
    parser.add_argument("--https", action="store_true",
                        help="TLS with the test CA (verified by both, trusted through REQUESTS_CA_BUNDLE)")
    parser.add_argument("--close", action="store_true",
                        help="the server answers Connection: close (a new connection per call, as werkzeug's)")
    args = parser.parse_args()
    ca = throwaway_ca() if args.https else None
    per_round = max(1, args.calls // args.rounds)
    results: dict[str, list[tuple[float, float]]] = {"requests.Session": [], "UpstreamHttp (urllib3)": []}
    connections: dict[str, int] = {}
    with KeepAliveServer({"/userinfo": BODY}, tls=ca, keep_alive=not args.close) as server:
        url = server.url + "/userinfo"
        if ca is not None:  # both read it at each call (requests lets it override ``session.verify``)
            os.environ["REQUESTS_CA_BUNDLE"] = str(ca.ca_file)
        session, pool = requests.Session(), UpstreamHttp()
        clients: dict[str, Callable[[], Any]] = {"requests.Session": lambda: before(session, url),
                                                 "UpstreamHttp (urllib3)": lambda: after(pool, url)}
        for name, call in clients.items():  # warm-up: connection, TLS handshake, imports
            opened = server.connections
            for _ in range(20):
                call()
            connections[name] = server.connections - opened
        for _ in range(args.rounds):
            for name, call in clients.items():
                opened = server.connections
                results[name].append(measure(call, per_round))
                connections[name] += server.connections - opened
        session.close()
        pool.close()
    scheme = "https" if ca is not None else "http"
    print(f"{args.rounds} rounds x {per_round} GETs of a {len(BODY)}-byte JSON body over {scheme} "
          f"{'Connection: close' if args.close else 'keep-alive'}, "
          f"127.0.0.1 ({sys.version.split()[0]}, requests {requests.__version__})")
    print(f"{'client':<24} {'CPU ms/call p50':>16} {'mean':>8} {'wall ms/call p50':>17} {'mean':>8} "
          f"{'connections':>12}")
    for name, rows in results.items():
        cpu, wall = [r[0] for r in rows], [r[1] for r in rows]
        print(f"{name:<24} {statistics.median(cpu):>16.3f} {statistics.fmean(cpu):>8.3f} "
              f"{statistics.median(wall):>17.3f} {statistics.fmean(wall):>8.3f} {connections[name]:>12}")
    old, new = (statistics.median([r[0] for r in rows]) for rows in results.values())
    print(f"CPU saved per call: {old - new:.3f} ms ({(1 - new / old) * 100:.0f} %)")


if __name__ == "__main__":
    main()
