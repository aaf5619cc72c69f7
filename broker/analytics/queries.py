"""The analytics figures for a range of days, read from the aggregates (``broker.storage.analytics_tables``), never
from the audit trail (issue 19).

What each read costs, whatever the size of the audit trail:

- daily counts (sign-ins by upstream and by app, new accounts, failures, declines, second factors): a range scan of
  the primary key ``(metric, day, ...)`` of ``analytics_daily``: days x the dimension's values rows;
- distinct citizens over the range (active, returning, MFA adoption, segments): one pass over the days accounts
  signed in within the range (``analytics_account_days``, primary key ``(day, account_id)``: at most one row per
  citizen and day, however many sign-ins), joined by primary key to ``analytics_accounts``. This is the one read
  that grows with use (about active citizens x days); the console can cache it per range.

Figures are as of the last rollup (``Report.rollup`` says how far behind the audit trail it is).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Engine, case, func, select

from broker.analytics.login_times import login_times
from broker.analytics.model import (
    AppClaim,
    Citizens,
    DayCount,
    Dimension,
    Metric,
    Report,
    Rollup,
    Segment,
    Segments,
    Series,
    Share,
    Total,
)
from broker.storage.analytics_tables import (
    AnalyticsAccountDayRow,
    AnalyticsAccountRow,
    AnalyticsDailyRow,
    AnalyticsWatermarkRow,
)
from broker.storage.tables import AuditChainHeadRow

_D, _A, _S = AnalyticsDailyRow, AnalyticsAccountRow, AnalyticsAccountDayRow
_COLUMN = {Dimension.UPSTREAM: _D.upstream, Dimension.DOWNSTREAM: _D.downstream, Dimension.DETAIL: _D.detail}
VERIFIED = "verified"


def upstream_mix_label(upstreams: int) -> str:
    return "none" if upstreams <= 0 else "1 upstream" if upstreams == 1 else \
        "2 upstreams" if upstreams == 2 else "3 or more upstreams"


def apps_used_label(apps: int) -> str:
    return "portal only" if apps <= 0 else "1 app" if apps == 1 else "2 apps" if apps == 2 else \
        "3-4 apps" if apps <= 4 else "5 or more apps"


def assurance_label(second_factor: bool) -> str:
    return "second factor verified" if second_factor else "upstream sign-in only"


UPSTREAM_MIX = ("1 upstream", "2 upstreams", "3 or more upstreams")
APPS_USED = ("portal only", "1 app", "2 apps", "3-4 apps", "5 or more apps")
ASSURANCE = ("upstream sign-in only", "second factor verified")


class AnalyticsQueries:
    """The figures (``broker.analytics.model``) for days ``first`` to ``last``, inclusive, in UTC."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def status(self) -> Rollup:
        with self._engine.connect() as connection:
            # one row per audit chain in each (``broker.analytics.rollup``): the sums count records
            watermark = connection.execute(select(func.sum(AnalyticsWatermarkRow.seq))).scalar()
            head = connection.execute(select(func.sum(AuditChainHeadRow.seq))).scalar()
        return Rollup(int(watermark or 0), int(head or 0))

    def series(self, metric: Metric, first: date, last: date, by: Dimension | None = None) -> Series:
        """``metric`` per day, broken down by ``by``."""
        key = _COLUMN[by] if by is not None else None
        columns = [_D.day, key] if key is not None else [_D.day]
        query = (select(*columns, func.sum(_D.count)).where(_D.metric == metric.value, _D.day.between(first, last))
                 .group_by(*columns).order_by(*columns))
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        points = tuple(DayCount(r[0], r[1] if key is not None else "", int(r[-1])) for r in rows)
        return Series(metric, by, first, last, points)

    def totals(self, metric: Metric, first: date, last: date, by: Dimension) -> tuple[Total, ...]:
        """``metric`` over the whole range per value of ``by``, largest first."""
        key = _COLUMN[by]
        query = (select(key, func.sum(_D.count)).where(_D.metric == metric.value, _D.day.between(first, last))
                 .group_by(key))
        with self._engine.connect() as connection:
            found = [Total(r[0], int(r[1])) for r in connection.execute(query)]
        return tuple(sorted(found, key=lambda t: (-t.count, t.key)))

    def total(self, metric: Metric, first: date, last: date) -> int:
        query = select(func.sum(_D.count)).where(_D.metric == metric.value, _D.day.between(first, last))
        with self._engine.connect() as connection:
            return int(connection.execute(query).scalar() or 0)

    def citizens(self, first: date, last: date) -> tuple[Citizens, Share, Segments]:
        """The distinct citizens who signed in from ``first`` to ``last``: how many, how many of them returning;
        MFA adoption among those not deleted since; and their segments. One pass (module docstring)."""
        active_ids = select(_S.account_id).where(_S.day.between(first, last))
        enrolled = case((_A.authenticators > 0, 1), else_=0)
        earlier = case((_A.first_day < first, 1), else_=0)
        groups = [_A.upstreams, _A.apps, _A.second_factor, _A.deleted, enrolled, earlier]
        query = select(*groups, func.count()).where(_A.account_id.in_(active_ids)).group_by(*groups)
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        active = returning = live = with_factor = 0
        mix: dict[str, int] = {}
        apps: dict[str, int] = {}
        assurance: dict[str, int] = {}
        for row in rows:
            upstreams, apps_used, second_factor, deleted, has_factor, before, n = tuple(row)
            active += n
            returning += n if before else 0
            if deleted:
                continue
            live += n
            with_factor += n if has_factor else 0
            _add(mix, upstream_mix_label(upstreams), n)
            _add(apps, apps_used_label(apps_used), n)
            _add(assurance, assurance_label(bool(second_factor)), n)
        new = self.total(Metric.NEW_ACCOUNT, first, last)
        segments = Segments(_segments(UPSTREAM_MIX, mix), _segments(APPS_USED, apps), _segments(ASSURANCE, assurance))
        return Citizens(active, returning, new), Share(with_factor, live), segments

    def report(self, first: date, last: date) -> Report:
        """Every figure for the range."""
        citizens, adoption, segments = self.citizens(first, last)
        outcomes = self.totals(Metric.SECOND_FACTOR, first, last, Dimension.DETAIL)
        verified = sum(t.count for t in outcomes if t.key.startswith(VERIFIED))
        return Report(
            first=first, last=last, rollup=self.status(),
            sign_ins_by_upstream=self.series(Metric.SIGN_IN, first, last, Dimension.UPSTREAM),
            sign_ins_by_app=self.series(Metric.SIGN_IN, first, last, Dimension.DOWNSTREAM),
            new_accounts=self.series(Metric.NEW_ACCOUNT, first, last),
            active_per_day=self.series(Metric.ACTIVE, first, last),
            returning_per_day=self.series(Metric.RETURNING, first, last),
            citizens=citizens,
            linking=Share(self.total(Metric.LINKED, first, last), citizens.new),
            failures_by_reason=self.totals(Metric.LOGIN_FAILED, first, last, Dimension.DETAIL),
            consent_declines_by_app=self.totals(Metric.CONSENT_DECLINED, first, last, Dimension.DOWNSTREAM),
            second_factor_outcomes=outcomes,
            step_up=Share(verified, self.total(Metric.SIGN_IN, first, last)),
            mfa_adoption=adoption,
            segments=segments,
            claim_declines=self.totals(Metric.CLAIM_DECLINED, first, last, Dimension.DETAIL),
            claim_declines_by_app=tuple(AppClaim(*row) for row in self.pairs(Metric.CLAIM_DECLINED, first, last)),
            **self.login_time_figures(first, last),
        )

    def pairs(self, metric: Metric, first: date, last: date) -> tuple[tuple[str, str, int], ...]:
        """``metric`` over the range per app and detail, largest first."""
        query = (select(_D.downstream, _D.detail, func.sum(_D.count))
                 .where(_D.metric == metric.value, _D.day.between(first, last)).group_by(_D.downstream, _D.detail))
        with self._engine.connect() as connection:
            found = [(r[0], r[1], int(r[2])) for r in connection.execute(query)]
        return tuple(sorted(found, key=lambda r: (-r[2], r[0], r[1])))

    def login_time_figures(self, first: date, last: date) -> dict[str, Any]:
        """Login time percentiles, overall and by upstream, and the histogram (``broker.analytics.login_times``):
        one read of days x upstreams x buckets rows, summed over apps in the database."""
        query = (select(_D.upstream, _D.detail, func.sum(_D.count))
                 .where(_D.metric == Metric.LOGIN_TIME.value, _D.day.between(first, last))
                 .group_by(_D.upstream, _D.detail))
        with self._engine.connect() as connection:
            rows = [(r[0], r[1], int(r[2])) for r in connection.execute(query)]
        upstreams = sorted({r[0] for r in rows})
        buckets: dict[str, int] = {}
        for _, bucket, n in rows:
            buckets[bucket] = buckets.get(bucket, 0) + n
        by_upstream = tuple((u, login_times((b, n) for up, b, n in rows if up == u)) for u in upstreams)
        return {"login_times": login_times(buckets.items()),
                "login_times_by_upstream": tuple(sorted(by_upstream, key=lambda p: (-p[1].timed, p[0]))),
                "login_time_buckets": tuple(Total(b, n) for b, n in sorted(buckets.items()))}


def _add(counts: dict[str, int], label: str, n: int) -> None:
    counts[label] = counts.get(label, 0) + n


def _segments(labels: tuple[str, ...], counts: dict[str, int]) -> tuple[Segment, ...]:
    """Every label of ``labels`` (0 when none fell in it), then any other label found (e.g. "none")."""
    extra = sorted(set(counts) - set(labels))
    return tuple(Segment(label, counts.get(label, 0)) for label in (*labels, *extra))
