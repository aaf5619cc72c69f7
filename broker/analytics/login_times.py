"""Login time as a histogram kept per day, upstream and app, and its percentiles (issue 19: p50/p95 login time).

Each timed ``login-succeeded`` record (``broker.core.login_time``) adds 1 to the bucket its duration falls in: a
daily count of metric ``login-time`` whose detail is the bucket's upper bound in milliseconds, zero-padded so the
buckets sort as text. Buckets add up over any range of days, upstreams or apps, so a percentile over 90 days reads
days x buckets rows, never the audit trail. A percentile is estimated as Prometheus's ``histogram_quantile``
does: linearly within the bucket the rank falls in; its error is at most the bucket's width (fine steps below
ten seconds, where most sign-ins end).

Only logins the citizen waited through are timed: an answer straight from the SSO session (``sso``) is a redirect
of a few milliseconds and would hide the sign-ins in the median.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from broker.core.login_time import MAX_MS

#: upper bounds of the buckets, in milliseconds; the last holds everything up to the longest duration recorded
BOUNDS_MS = (250, 500, 1_000, 1_500, 2_000, 3_000, 4_000, 5_000, 7_500, 10_000, 15_000, 20_000, 30_000, 45_000,
             60_000, 90_000, 120_000, 180_000, 300_000, 600_000, MAX_MS)
UNTIMED = frozenset({"sso"})
_WIDTH = len(str(MAX_MS))


def bucket_of(ms: int) -> str:
    """The bucket (its upper bound, as stored) that a duration of ``ms`` falls in."""
    bound = next((b for b in BOUNDS_MS if ms <= b), BOUNDS_MS[-1])
    return f"{bound:0{_WIDTH}d}"


def bound_of(bucket: str) -> int | None:
    """A stored bucket's upper bound; None for text that is no bucket."""
    return int(bucket) if bucket.isdigit() and int(bucket) in BOUNDS_MS else None


@dataclass(frozen=True)
class LoginTimes:
    """``timed`` logins and their estimated percentiles in milliseconds (None when none was timed)."""

    timed: int
    p50_ms: int | None
    p95_ms: int | None


def percentile(counts: Mapping[int, int], q: float) -> int | None:
    """The ``q`` quantile (0 < q <= 1) of a histogram ``{upper bound: count}`` over ``BOUNDS_MS``, interpolated
    between its bucket's bounds (the first bucket starts at 0)."""
    total = sum(counts.values())
    if total <= 0:
        return None
    rank, seen, lower = q * total, 0, 0
    for bound in BOUNDS_MS:
        n = counts.get(bound, 0)
        if n > 0 and seen + n >= rank:
            return round(lower + (bound - lower) * (rank - seen) / n)
        seen, lower = seen + n, bound
    return BOUNDS_MS[-1]


def login_times(rows: Iterable[tuple[str, int]]) -> LoginTimes:
    """The figures of stored (bucket, count) rows; text that is no bucket is left out."""
    counts: dict[int, int] = {}
    for bucket, n in rows:
        bound = bound_of(bucket)
        if bound is not None:
            counts[bound] = counts.get(bound, 0) + n
    return LoginTimes(sum(counts.values()), percentile(counts, 0.5), percentile(counts, 0.95))
