"""A login's duration in its audit record (``broker.core.login_time``) and the histogram's percentiles
(``broker.analytics.login_times``)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from broker.analytics.login_times import BOUNDS_MS, bucket_of, login_times, percentile
from broker.core import login_time
from broker.core.model import LoginRequest, Protocol, utcnow


def test_the_duration_follows_how_and_reads_back() -> None:
    now = utcnow()
    assert login_time.with_duration("upstream", now - timedelta(seconds=5.23), now) == "upstream; 5230 ms"
    assert login_time.read("upstream; 5230 ms") == ("upstream", 5230)
    assert login_time.with_duration("sso", None, now) == "sso"  # not begun at an app's request: not timed
    assert login_time.read("sso") == ("sso", None)
    assert login_time.read(None) == ("", None)


def test_a_clock_that_went_back_or_an_endless_wait_stays_within_bounds() -> None:
    now = utcnow()
    assert login_time.with_duration("upstream", now + timedelta(seconds=3), now) == "upstream; 0 ms"
    assert login_time.read(login_time.with_duration("upstream", now - timedelta(days=3), now)) == (
        "upstream", login_time.MAX_MS)


@pytest.mark.parametrize("reason", ["upstream; 12 s", "upstream; -5 ms", "upstream;5 ms", "x; 99999999 ms"])
def test_anything_else_is_read_as_how_without_a_duration(reason: str) -> None:
    assert login_time.read(reason) == (reason, None)


def test_the_start_is_kept_with_a_stored_login_request_but_is_not_part_of_what_was_asked() -> None:
    started = utcnow()
    asked = LoginRequest("https://app.example", Protocol.OIDC, "https://app.example/cb", "r1", None, frozenset())
    timed = LoginRequest.from_json(LoginRequest(**{**asked.__dict__, "started_at": started}).to_json())
    assert timed.started_at == started and timed == asked
    assert LoginRequest.from_json(asked.to_json()).started_at is None
    naive = asked.to_json().replace('"started_at": null', f'"started_at": "{started.replace(tzinfo=None).isoformat()}"')
    with pytest.raises(ValueError, match="timezone-aware"):
        LoginRequest.from_json(naive)


def test_each_duration_falls_in_the_first_bucket_that_holds_it() -> None:
    assert [bucket_of(ms) for ms in (0, 250, 251, 9_999, 10_000, 10_001, login_time.MAX_MS)] == [
        "0000250", "0000250", "0000500", "0010000", "0010000", "0015000", f"{login_time.MAX_MS:07d}"]


def test_percentiles_interpolate_within_the_bucket_the_rank_falls_in() -> None:
    # 100 logins spread evenly over 2-3 s: the median is halfway, the 95th percentile 95% of the way
    assert percentile({3_000: 100}, 0.5) == 2_500 and percentile({3_000: 100}, 0.95) == 2_950
    # 90 fast ones (0.5-1 s) and 10 slow (45-60 s): the median among the fast, the 95th percentile among the slow
    counts = {1_000: 90, 60_000: 10}
    assert percentile(counts, 0.5) == 500 + round(500 * 50 / 90) == 778
    assert percentile(counts, 0.95) == 45_000 + round(15_000 * 5 / 10)
    assert percentile({}, 0.5) is None
    figures = login_times([("0001000", 90), ("0060000", 10), ("not a bucket", 5), ("0000777", 1)])
    assert (figures.timed, figures.p50_ms, figures.p95_ms) == (100, 778, 52_500)
    assert list(BOUNDS_MS) == sorted(set(BOUNDS_MS))
