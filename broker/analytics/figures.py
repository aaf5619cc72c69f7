"""The charts of a report, by name (``broker analytics report --csv NAME``, the console's pages and downloads).

A daily chart has one x label per day of the range (days without counts are 0) and at most ``MAX_SERIES`` series:
the largest, then the rest summed as "(other)", so the drawing stays readable; its table holds the same figures.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from broker.analytics.charts import Chart, ChartKind, ChartSeries
from broker.analytics.login_times import bound_of
from broker.analytics.model import Report, Segment, Series, Total

MAX_SERIES = 8
OTHER = "(other)"
NONE = "(none)"


def days_of(first: date, last: date) -> tuple[date, ...]:
    return tuple(first + timedelta(days=n) for n in range((last - first).days + 1))


def daily(name: str, title: str, series: Series, y_title: str) -> Chart:
    """``series`` as stacked bars per day, by its dimension."""
    days = days_of(series.first, series.last)
    keys = series.keys()
    shown, rest = (keys, set()) if len(keys) <= MAX_SERIES else ((*keys[:MAX_SERIES - 1], OTHER),
                                                                  set(keys[MAX_SERIES - 1:]))
    values = {key: dict.fromkeys(days, 0) for key in shown}
    for point in series.points:
        values[OTHER if point.key in rest else point.key][point.day] += point.count
    described = ", ".join(f"{_label(k)} {sum(values[k].values())}" for k in shown) or "none"
    return Chart(name, title, f"{title} per day from {series.first} to {series.last} (UTC): {described}. "
                 "The table holds every day's figures.", "day", y_title, ChartKind.STACKED_BAR,
                 tuple(d.isoformat() for d in days),
                 tuple(ChartSeries(_label(k), tuple(values[k][d] for d in days)) for k in shown))


def per_day(name: str, title: str, y_title: str, named: tuple[tuple[str, Series], ...]) -> Chart:
    """Several undivided series as lines per day."""
    first, last = named[0][1].first, named[0][1].last
    days = days_of(first, last)
    lines = []
    for label, series in named:
        by_day = dict.fromkeys(days, 0)
        for point in series.points:
            by_day[point.day] += point.count
        lines.append(ChartSeries(label, tuple(by_day[d] for d in days)))
    described = ", ".join(f"{s.name} {sum(s.values)}" for s in lines)
    return Chart(name, title, f"{title} from {first} to {last} (UTC), summed over the days: {described}. "
                 "The table holds every day's figures.", "day", y_title, ChartKind.LINE,
                 tuple(d.isoformat() for d in days), tuple(lines))


def bars(name: str, title: str, report: Report, x_title: str, y_title: str,
         items: tuple[Total, ...] | tuple[Segment, ...]) -> Chart:
    """Totals over the range as horizontal bars, one per value."""
    labels = tuple(_label(i.key) if isinstance(i, Total) else i.label for i in items)
    counts = tuple(i.count if isinstance(i, Total) else i.citizens for i in items)
    described = ", ".join(f"{label} {n}" for label, n in zip(labels, counts, strict=True)) or "none"
    return Chart(name, title, f"{title} from {report.first} to {report.last} (UTC): {described}. "
                 "The table holds the same figures.", x_title, y_title, ChartKind.HORIZONTAL_BAR, labels,
                 (ChartSeries(y_title, counts),))


def _label(key: str) -> str:
    return key or NONE


def seconds(ms: int | None) -> str:
    """A duration for people: "2.4 s", "-" when there is none."""
    return "-" if ms is None else f"{ms / 1000:.1f} s"


def login_time_distribution(report: Report) -> Chart:
    """How many timed logins ended within each bucket's bounds (``broker.analytics.login_times``)."""
    labels, counts, lower = [], [], 0
    for total in report.login_time_buckets:
        bound = bound_of(total.key)
        if bound is None:
            continue
        labels.append(f"{seconds(lower)} to {seconds(bound)}")
        counts.append(total.count)
        lower = bound
    times = report.login_times
    return Chart("login-time-distribution", "Login time", f"How long the {times.timed} logins citizens waited "
                 f"through took, from {report.first} to {report.last} (UTC): median {seconds(times.p50_ms)}, 95th "
                 f"percentile {seconds(times.p95_ms)}. The table holds the count of each range.", "time", "logins",
                 ChartKind.HORIZONTAL_BAR, tuple(labels), (ChartSeries("logins", tuple(counts)),))


def login_time_by_upstream(report: Report) -> Chart:
    """The median and 95th percentile login time per upstream, in milliseconds."""
    rows = report.login_times_by_upstream
    described = ", ".join(f"{_label(u)} {seconds(t.p50_ms)} / {seconds(t.p95_ms)}" for u, t in rows) or "none"
    return Chart("login-time-by-upstream", "Login time by upstream", f"Median and 95th percentile login time by "
                 f"upstream from {report.first} to {report.last} (UTC): {described}. The table holds the same figures "
                 "in milliseconds.", "upstream", "milliseconds", ChartKind.HORIZONTAL_BAR,
                 tuple(_label(u) for u, _ in rows),
                 (ChartSeries("median (ms)", tuple(t.p50_ms or 0 for _, t in rows)),
                  ChartSeries("95th percentile (ms)", tuple(t.p95_ms or 0 for _, t in rows))))


FIGURES: dict[str, Callable[[Report], Chart]] = {
    "sign-ins-by-upstream": lambda r: daily("sign-ins-by-upstream", "Sign-ins by upstream", r.sign_ins_by_upstream,
                                            "sign-ins"),
    "sign-ins-by-app": lambda r: daily("sign-ins-by-app", "Sign-ins by app", r.sign_ins_by_app, "sign-ins"),
    "citizens-per-day": lambda r: per_day("citizens-per-day", "Citizens per day", "citizens", (
        ("signed in", r.active_per_day), ("returning", r.returning_per_day), ("new accounts", r.new_accounts))),
    "failures-by-reason": lambda r: bars("failures-by-reason", "Failed logins by reason", r, "reason", "failures",
                                         r.failures_by_reason),
    "consent-declines-by-app": lambda r: bars("consent-declines-by-app", "Consent declined by app", r, "app",
                                              "declines", r.consent_declines_by_app),
    "claims-declined": lambda r: bars("claims-declined", "Claims declined", r, "claim", "declines",
                                      r.claim_declines),
    "login-time-distribution": login_time_distribution,
    "login-time-by-upstream": login_time_by_upstream,
    "second-factor-outcomes": lambda r: bars("second-factor-outcomes", "Second-factor events by outcome", r,
                                             "outcome", "events", r.second_factor_outcomes),
    "segments-upstream-mix": lambda r: bars("segments-upstream-mix", "Citizens by upstreams used", r, "upstreams",
                                            "citizens", r.segments.upstream_mix),
    "segments-apps-used": lambda r: bars("segments-apps-used", "Citizens by apps used", r, "apps", "citizens",
                                         r.segments.apps_used),
    "segments-assurance": lambda r: bars("segments-assurance", "Citizens by assurance reached", r, "assurance",
                                         "citizens", r.segments.assurance),
}
