"""The operator console's analytics (issue 19): the sign-in figures of the last days (``broker.analytics``), each
as a chart, the table of its numbers and a CSV download, for operators allowed ``view-analytics``.

The figures are read from the aggregates the delivery worker rolls up beside the audit trail (``broker analytics
rollup``), never from the audit trail itself; the page says how far the rollup has come. A chart is an SVG image of
its own (``<img>``, with the figure's title as its text alternative and the table beside it): pygal styles its
charts with an inline ``<style>``, which the pages' CSP forbids, so the image is served with a CSP of its own that
allows inline style and nothing else (no script, no fetch) — an image runs no script anyway.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, request
from werkzeug.wrappers import Response

from broker.analytics import AnalyticsQueries, Report
from broker.analytics.charts import csv_of, svg_of, table_of
from broker.analytics.figures import FIGURES, seconds
from broker.core.model import utcnow
from broker.core.operators import Permission
from broker.journeys import console
from broker.web.console import operator_page, page
from broker.web.services import services

bp = Blueprint("console_analytics", __name__, url_prefix="/console/analytics")
PERIODS = (7, 30, 90, 365)
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _days() -> int:
    text = request.args.get("days", "30")
    return int(text) if text.isdigit() and int(text) in PERIODS else 30


def _report(days: int) -> Report:
    last = utcnow().date()
    return AnalyticsQueries(services().engine).report(last - timedelta(days=days - 1), last)


@bp.get("/")
def figures() -> Response:
    days = _days()

    def view(op: console.Operator) -> Response:
        report = _report(days)
        charts = [FIGURES[name](report) for name in FIGURES]
        times = report.login_times
        return page("console_analytics.html", operator=op, report=report, days=days, periods=PERIODS,
                    figures=[(chart, table_of(chart)) for chart in charts],
                    login_time=(seconds(times.p50_ms), seconds(times.p95_ms)))
    return operator_page(Permission.VIEW_ANALYTICS, view)


@bp.get("/<name>.svg")
def chart(name: str) -> Response:
    days = _days()

    def view(op: console.Operator) -> Response:
        if name not in FIGURES:
            return Response("no such figure\n", status=404, mimetype="text/plain")
        return Response(svg_of(FIGURES[name](_report(days))), mimetype="image/svg+xml",
                        headers={"Content-Security-Policy": SVG_CSP})
    return operator_page(Permission.VIEW_ANALYTICS, view)


@bp.get("/<name>.csv")
def table(name: str) -> Response:
    days = _days()

    def view(op: console.Operator) -> Response:
        if name not in FIGURES:
            return Response("no such figure\n", status=404, mimetype="text/plain")
        return Response(csv_of(table_of(FIGURES[name](_report(days)))), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}-{days}d.csv"'})
    return operator_page(Permission.VIEW_ANALYTICS, view)
