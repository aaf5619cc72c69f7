"""When a failed delivery is tried again, and what a receiver's status means (``broker.delivery.schedule``,
``broker.delivery.http``; Back-Channel Logout 1.0 §2.8, RFC 8935 §2.2-2.3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from broker.delivery.http import MAX_SECONDS, Verdict, verdict
from broker.delivery.schedule import MAX_ATTEMPTS, MAX_DELAY, retry_at, retry_delay
from broker.delivery.worker import BATCH, LEASE

AT = datetime.now(UTC).replace(microsecond=0)  # the tests' own clock: no test depends on a date


def test_delays_double_from_30_seconds_up_to_an_hour() -> None:
    delays = [retry_delay(n, rand=lambda: 0.0) for n in range(1, 13)]
    assert [d.total_seconds() for d in delays] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600, 3600]
    assert retry_delay(10_000, rand=lambda: 0.0) == MAX_DELAY


def test_jitter_only_shortens_a_delay_by_at_most_a_fifth() -> None:
    assert retry_delay(3, rand=lambda: 0.999999) > timedelta(seconds=96)
    assert retry_delay(3, rand=lambda: 0.5) == timedelta(seconds=108)
    assert all(timedelta(seconds=24) < retry_delay(1) <= timedelta(seconds=30) for _ in range(50))


def test_the_last_attempt_gives_up() -> None:
    assert retry_at(1, AT, rand=lambda: 0.0) == AT + timedelta(seconds=30)
    assert retry_at(MAX_ATTEMPTS - 1, AT, rand=lambda: 0.0) == AT + MAX_DELAY
    assert retry_at(MAX_ATTEMPTS, AT) is None
    assert retry_at(2, AT, max_attempts=2) is None
    with pytest.raises(ValueError, match="from 1"):
        retry_delay(0)


@pytest.mark.parametrize(("status", "expected"), [
    (200, Verdict.DELIVERED), (202, Verdict.DELIVERED), (204, Verdict.DELIVERED),
    (400, Verdict.REFUSED), (401, Verdict.REFUSED), (403, Verdict.REFUSED), (404, Verdict.REFUSED),
    (410, Verdict.REFUSED), (408, Verdict.RETRY), (429, Verdict.RETRY),
    (500, Verdict.RETRY), (502, Verdict.RETRY), (503, Verdict.RETRY), (504, Verdict.RETRY),
    (301, Verdict.RETRY), (302, Verdict.RETRY), (307, Verdict.RETRY), (100, Verdict.RETRY),
])
def test_what_a_status_means(status: int, expected: Verdict) -> None:
    assert verdict(status) is expected


def test_a_lease_outlasts_a_batch_of_the_slowest_posts() -> None:
    assert LEASE.total_seconds() > BATCH * MAX_SECONDS
