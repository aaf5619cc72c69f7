"""Every figure of the report, exactly, for the story of ``analytics_support`` (records written through the real
audit log, rolled up, read back from the aggregates only)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Engine, delete

from broker.analytics import AnalyticsQueries, Report, rollup
from broker.analytics.login_times import LoginTimes
from broker.analytics.model import AppClaim, Citizens, DayCount, Dimension, Metric, Rollup, Segment, Share, Total
from broker.core.audit import AuditKind
from broker.storage.tables import AuditEventRow
from tests.analytics.analytics_support import Told, day, now_utc, report_range, tell


@pytest.fixture
def now() -> datetime:
    return now_utc()


@pytest.fixture
def report(engine: Engine, now: datetime) -> Report:
    tell(engine, now)
    rollup(engine, now)
    return AnalyticsQueries(engine).report(*report_range(now))


def test_sign_ins_per_day_by_upstream_and_by_app(report: Report, now: datetime) -> None:
    assert report.sign_ins_by_upstream.points == (
        DayCount(day(now, 3), "google", 2), DayCount(day(now, 2), "city", 1), DayCount(day(now, 2), "passkey", 1),
        DayCount(day(now, 1), "city", 1), DayCount(day(now, 0), "google", 1))
    assert report.sign_ins_by_upstream.totals() == {"google": 3, "city": 2, "passkey": 1}
    assert report.sign_ins_by_app.totals() == {"app-a": 3, "app-b": 1, "broker-portal": 1, "app-c": 1}
    assert report.sign_ins_by_app.keys() == ("app-a", "app-b", "app-c", "broker-portal")


def test_new_active_and_returning_citizens(report: Report, now: datetime) -> None:
    # new: new1, new2 (deleted since: still new that day), new3; not "undone" (its only record is its deletion)
    assert report.new_accounts.points == (DayCount(day(now, 2), "", 2), DayCount(day(now, 0), "", 1))
    # active: old (twice on day 3, once on day 1), new1, new2, new3; returning: old, first seen 20 days ago
    assert report.citizens == Citizens(active=4, returning=1, new=3)
    assert report.active_per_day.points == (DayCount(day(now, 3), "", 1), DayCount(day(now, 2), "", 2),
                                            DayCount(day(now, 1), "", 1), DayCount(day(now, 0), "", 1))
    assert report.returning_per_day.points == (DayCount(day(now, 3), "", 1), DayCount(day(now, 1), "", 1))


def test_linking_failures_declines_and_second_factors(report: Report) -> None:
    assert report.linking == Share(1, 3)
    assert report.failures_by_reason == (Total("LoginStateInvalid", 2), Total("ConsentDeclined", 1))
    assert report.consent_declines_by_app == (Total("app-b", 1),)
    assert report.second_factor_outcomes == (Total("locked", 1), Total("verified: totp", 1), Total("wrong code", 1))
    assert report.step_up == Share(1, 6)  # one second factor verified, six sign-ins


def test_claims_declined_by_claim_and_by_app(report: Report) -> None:
    # new1 declined app-b's page (email and name) and agreed to app-a's without ticking "name"
    assert report.claim_declines == (Total("name", 2), Total("email", 1))
    assert report.claim_declines_by_app == (AppClaim("app-a", "name", 1), AppClaim("app-b", "email", 1),
                                            AppClaim("app-b", "name", 1))


def test_login_time_percentiles_from_the_histogram(report: Report) -> None:
    # timed in range: google 2.4 s, city 6.1 s and 14 s, passkey 0.9 s; "sso; 3 ms" is not timed, new3's record
    # has no duration and "dormant"'s is out of range. Buckets (ms): 1000, 3000, 7500, 15000 hold one each;
    # the median (rank 2) ends bucket 2000-3000, the 95th percentile (rank 3.8) is 80% into 10000-15000.
    assert report.login_times == LoginTimes(timed=4, p50_ms=3000, p95_ms=14000)
    assert report.login_times_by_upstream == (
        ("city", LoginTimes(2, 7500, 14500)), ("google", LoginTimes(1, 2500, 2950)),
        ("passkey", LoginTimes(1, 750, 975)))
    assert report.login_time_buckets == (Total("0001000", 1), Total("0003000", 1), Total("0007500", 1),
                                         Total("0015000", 1))


def test_mfa_adoption_and_segments_count_the_active_citizens_not_deleted(report: Report) -> None:
    # old (a TOTP; its recovery codes do not count), new1 (none), new3 (added, then removed); new2 is deleted
    assert report.mfa_adoption == Share(1, 3)
    segments = report.segments
    assert segments.upstream_mix == (Segment("1 upstream", 2), Segment("2 upstreams", 1),
                                     Segment("3 or more upstreams", 0))
    assert segments.apps_used == (Segment("portal only", 0), Segment("1 app", 2), Segment("2 apps", 1),
                                  Segment("3-4 apps", 0), Segment("5 or more apps", 0))
    assert segments.assurance == (Segment("upstream sign-in only", 2), Segment("second factor verified", 1))


def test_the_status_says_how_far_the_rollup_reached(engine: Engine, report: Report, now: datetime) -> None:
    assert report.rollup.watermark == report.rollup.audit_head == 26 and report.rollup.behind == 0
    tell(engine, now, (Told(0, AuditKind.LOGIN_FAILED, reason="LoginStateInvalid"),))
    assert AnalyticsQueries(engine).status() == Rollup(watermark=26, audit_head=27)


def test_a_range_in_the_past_has_its_own_figures(engine: Engine, report: Report, now: datetime) -> None:
    queries = AnalyticsQueries(engine)
    older = queries.report(day(now, 30), day(now, 10))
    assert older.citizens == Citizens(active=2, returning=0, new=2)  # dormant and old, both new then
    assert older.failures_by_reason == (Total("UnknownParty", 1),)
    assert queries.series(Metric.AUTHENTICATOR_ADDED, day(now, 30), now.date(), Dimension.DETAIL).totals() == {
        "totp": 2, "recovery-code": 1, "passkey": 1}


def test_the_figures_never_read_the_audit_trail(engine: Engine, report: Report, now: datetime) -> None:
    with engine.begin() as connection:
        connection.execute(delete(AuditEventRow))
    again = AnalyticsQueries(engine).report(*report_range(now))
    assert again == report
