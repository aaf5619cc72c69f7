"""The bounded load loop the benches share (``gunicorn_bench.run_level``, ``scale_out_bench.run_step``).

``concurrency`` threads take job numbers 0, 1, 2, ... from one counter under a lock and run ``job(n)``, until
``count`` jobs have been taken or ``seconds`` have passed (a job under way when time runs out finishes). A job
that raises is a failure, kept as text and never counted as done; the others' wall times are kept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

#: how much of a failure's text is kept
FAILURE_TEXT = 300


@dataclass
class Run:
    """What one bounded run did."""

    #: wall time of each job that succeeded, in seconds, in the order they finished
    latencies: list[float] = field(default_factory=list)
    #: ``<exception type>: <message>`` of each job that raised
    failures: list[str] = field(default_factory=list)
    #: wall time of the whole run, in seconds
    seconds: float = 0.0

    @property
    def done(self) -> int:
        return len(self.latencies)


def run_bounded(job: Callable[[int], None], concurrency: int, count: int, seconds: float) -> Run:
    """Run ``job(n)`` for n = 0, 1, ... on ``concurrency`` threads, at most ``count`` jobs and ``seconds`` long."""
    run, lock = Run(), threading.Lock()
    numbers = iter(range(count))
    deadline = time.monotonic() + seconds

    def worker(_: int) -> None:
        while time.monotonic() < deadline:
            with lock:
                n = next(numbers, None)
            if n is None:
                return
            started = time.perf_counter()
            try:
                job(n)
            except Exception as exc:  # counted and shown, never as a job done
                with lock:
                    run.failures.append(f"{type(exc).__name__}: {exc}"[:FAILURE_TEXT])
                continue
            elapsed = time.perf_counter() - started
            with lock:
                run.latencies.append(elapsed)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(concurrency)))
    run.seconds = time.perf_counter() - started
    return run
