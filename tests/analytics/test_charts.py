"""Each figure as an accessible SVG without JavaScript, and as a table whose CSV reads back as the same table."""

from __future__ import annotations

import csv
import importlib
import io
import sys
import warnings
import xml.etree.ElementTree as ET
from datetime import datetime

import pytest
from sqlalchemy import Engine

from broker.analytics import AnalyticsQueries, Report, rollup
from broker.analytics.charts import Chart, ChartKind, ChartSeries, Table, csv_of, svg_of, table_of
from broker.analytics.figures import FIGURES, MAX_SERIES, OTHER, daily
from broker.analytics.model import DayCount, Dimension, Metric, Series
from tests.analytics.analytics_support import RANGE_DAYS, day, now_utc, report_range, tell

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def now() -> datetime:
    return now_utc()


@pytest.fixture
def report(engine: Engine, now: datetime) -> Report:
    tell(engine, now)
    rollup(engine, now)
    return AnalyticsQueries(engine).report(*report_range(now))


def _read_csv(text: str) -> Table:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return Table("", tuple(rows[0]), tuple(tuple(r) for r in rows[1:]))


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_every_figure_is_an_accessible_svg_with_a_table_and_csv(report: Report, name: str) -> None:
    chart = FIGURES[name](report)
    root = ET.fromstring(svg_of(chart))
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    title, desc = root[0], root[1]
    assert (title.tag, title.text, desc.tag) == (f"{SVG}title", chart.title, f"{SVG}desc")
    assert desc.text is not None and "table" in desc.text
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert not root.findall(f".//{SVG}script") and "<script" not in svg_of(chart) and "<!--" not in svg_of(chart)
    table = table_of(chart)
    assert len(table.rows) == len(chart.x_labels) and len(table.header) == 1 + len(chart.series)
    back = _read_csv(csv_of(table))
    assert (back.header, back.rows) == (table.header, table.rows)


def test_a_daily_figure_has_every_day_of_the_range(report: Report, now: datetime) -> None:
    chart = FIGURES["sign-ins-by-upstream"](report)
    assert len(chart.x_labels) == RANGE_DAYS and chart.x_labels[-1] == now.date().isoformat()
    assert [s.name for s in chart.series] == ["google", "city", "passkey"]
    google = chart.series[0].values
    assert google[RANGE_DAYS - 1 - 3] == 2 and google[-1] == 1 and sum(google) == 3
    assert "google 3, city 2, passkey 1" in chart.description


def test_beyond_the_largest_series_the_rest_is_summed_as_other(now: datetime) -> None:
    first = day(now, 1)
    points = tuple(DayCount(first, f"app-{n:02}", n + 1) for n in range(MAX_SERIES + 3))
    chart = daily("apps", "Sign-ins by app", Series(Metric.SIGN_IN, Dimension.DOWNSTREAM, first, first, points), "n")
    assert len(chart.series) == MAX_SERIES and chart.series[-1].name == OTHER
    assert chart.series[0] == ChartSeries("app-10", (11,))
    assert chart.series[-1].values == (1 + 2 + 3 + 4,)  # app-00 .. app-03
    assert sum(s.values[0] for s in chart.series) == sum(p.count for p in points)


def test_csv_cells_a_spreadsheet_would_run_are_defused() -> None:
    chart = Chart("x", "t", "d", "reason", "failures", ChartKind.HORIZONTAL_BAR, ("=HYPERLINK(1)", "-1", "ok, \"q\""),
                  (ChartSeries("failures", (1, 2, 3)),))
    rows = list(csv.reader(io.StringIO(csv_of(table_of(chart)), newline="")))
    assert rows == [["reason", "failures"], ["'=HYPERLINK(1)", "1"], ["'-1", "2"], ["ok, \"q\"", "3"]]


def test_drawing_leaves_the_import_system_as_it_was() -> None:
    """pygal's legacy map-plugin finder is removed: a failed import elsewhere raises no ImportWarning."""
    assert not [f for f in sys.meta_path if type(f).__name__ == "PluginImportFixer"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module("a_module_that_does_not_exist_anywhere")
