"""What checking a client secret costs at the token endpoint, for each stored form (``broker.oidc.client_secret``).

    python bench/client_secret_bench.py [--rounds 50] [--threads 2]

Times ``verify_secret`` for a ``sha256:`` hash (secrets the broker generates) and an ``scrypt$`` hash (secrets
operators import) with the right and a wrong secret, one at a time and then from ``--threads`` threads at once
(several token requests in one worker process; gunicorn's worker processes scale apart from that). scrypt's
memory per check is 128 * N * r bytes. Prints milliseconds per check (median and 95th percentile) and checks
per second.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from broker.oidc.client_secret import SCRYPT_N, SCRYPT_P, SCRYPT_R, hash_generated, hash_provided, verify_secret

SECRET = "q7Vd9XkP2mWb4ZtR8sLc1NhJ6yFg3EaU"


def _timed(stored: str, presented: str, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        verify_secret(presented, stored)
        times.append(time.perf_counter() - start)
    return times


def _row(label: str, times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (f"{label:<34} median {statistics.median(times) * 1000:8.3f} ms   p95 {p95 * 1000:8.3f} ms   "
            f"{1 / statistics.mean(times):9.0f} checks/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    generated, provided = hash_generated(SECRET), hash_provided(SECRET)
    print(f"scrypt N={SCRYPT_N} r={SCRYPT_R} p={SCRYPT_P}: {128 * SCRYPT_N * SCRYPT_R // 2**20} MiB per check")
    for label, stored in (("sha256 (generated secrets)", generated), ("scrypt (imported secrets)", provided)):
        print(_row(label + ", right", _timed(stored, SECRET, args.rounds)))
        print(_row(label + ", wrong", _timed(stored, SECRET[::-1], args.rounds)))
    start = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as pool:
        done = sum(pool.map(lambda _: verify_secret(SECRET, provided), range(args.rounds * args.threads)))
    elapsed = time.perf_counter() - start
    print(f"scrypt, {args.threads} threads at once: {done / elapsed:.0f} checks/s "
          f"({elapsed / done * 1000:.1f} ms of wall time per check)")


if __name__ == "__main__":
    main()
