"""The benches' bounded load loop (``bench/workers.py``, used by ``gunicorn_bench`` and ``scale_out_bench``): every
job number once, at most ``count`` of them, no new job after ``seconds``, failures kept apart from the jobs done."""

from __future__ import annotations

import threading
import time

from bench.workers import FAILURE_TEXT, run_bounded


def test_every_number_runs_once_and_failures_are_not_counted_as_done() -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def job(n: int) -> None:
        with lock:
            seen.append(n)
        if n % 4 == 0:
            raise RuntimeError(f"job {n} failed " + "x" * 400)

    run = run_bounded(job, concurrency=3, count=20, seconds=30)

    assert sorted(seen) == list(range(20))
    assert run.done == len(run.latencies) == 15 and all(t >= 0 for t in run.latencies)
    assert len(run.failures) == 5 and all(f.startswith("RuntimeError: job ") for f in run.failures)
    assert max(len(f) for f in run.failures) == FAILURE_TEXT
    assert run.seconds > 0


def test_no_job_starts_after_the_time_is_up() -> None:
    started: list[int] = []

    def job(n: int) -> None:
        started.append(n)
        time.sleep(0.05)

    run = run_bounded(job, concurrency=2, count=10_000, seconds=0.3)

    assert 2 <= len(started) <= 2 * (0.3 / 0.05 + 1)
    assert run.done == len(started) and run.failures == []
    assert run.seconds < 2
