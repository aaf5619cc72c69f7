"""Charts of the analytics as server-side SVG (pygal), each with the same figures as a table and as CSV (issue 19).

A ``Chart`` is data: what to draw and the words that describe it. ``table_of`` gives its table (the accessible
equivalent the console shows beside it, and the CSV download), ``svg_of`` its drawing:

- no JavaScript: pygal's script elements (its configuration and tooltips) are removed; no XML declaration, so the
  SVG can be inlined in a page;
- ``role="img"``, and a ``<title>`` and a ``<desc>`` as the first children, named by ``aria-labelledby``: a screen
  reader announces the title and the description, which says where the figures are (the table);
- pygal's comments (its version and the day the chart was drawn) are removed too.

CSV cells that a spreadsheet would run as a formula (starting with ``= + - @``, a tab or a carriage return) get a
leading ``'`` (OWASP, CSV injection): names of apps and failure reasons come from the audit trail.
"""

from __future__ import annotations

import csv
import io
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import pygal  # type: ignore[import-untyped]

# pygal appends to ``sys.meta_path`` a finder for its map plugins (``pygal.maps.*``) with only the legacy
# ``find_module``: from then on every failed import in the process, anywhere, warns "find_spec() not found" (an
# ImportWarning on Python 3.10 and 3.11; Kozea/pygal pull request 532). The broker draws no maps: take it out.
sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, pygal.PluginImportFixer)]


class ChartKind(Enum):
    LINE = "line"
    STACKED_BAR = "stacked-bar"
    HORIZONTAL_BAR = "horizontal-bar"


@dataclass(frozen=True)
class ChartSeries:
    name: str
    values: tuple[int, ...]


@dataclass(frozen=True)
class Chart:
    """``series`` over ``x_labels`` (one value per label); ``name`` is the figure's (``--csv NAME``, file names)."""

    name: str
    title: str
    description: str
    x_title: str
    y_title: str
    kind: ChartKind
    x_labels: tuple[str, ...]
    series: tuple[ChartSeries, ...]


@dataclass(frozen=True)
class Table:
    """The chart's figures: a header row, then one row per x label."""

    caption: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def table_of(chart: Chart) -> Table:
    header = (chart.x_title, *(s.name for s in chart.series))
    rows = tuple((label, *(str(s.values[i]) for s in chart.series)) for i, label in enumerate(chart.x_labels))
    return Table(chart.title, header, rows)


def csv_of(table: Table) -> str:
    """The table as CSV (RFC 4180: comma, CRLF, quotes where needed), header first."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_safe(cell) for cell in table.header])
    writer.writerows([_safe(cell) for cell in row] for row in table.rows)
    return out.getvalue()


def _safe(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def svg_of(chart: Chart) -> str:
    """The chart as an accessible SVG document without JavaScript (module docstring)."""
    kinds: dict[ChartKind, Callable[..., Any]] = {
        ChartKind.LINE: pygal.Line, ChartKind.STACKED_BAR: pygal.StackedBar,
        ChartKind.HORIZONTAL_BAR: pygal.HorizontalBar,
    }
    many = len(chart.x_labels) > 16
    drawing = kinds[chart.kind](
        disable_xml_declaration=True, js=[], title=chart.title, x_title=chart.x_title, y_title=chart.y_title,
        x_label_rotation=0 if chart.kind is ChartKind.HORIZONTAL_BAR else 45, show_minor_x_labels=not many,
        x_labels_major_every=7 if many else None, truncate_legend=40, legend_at_bottom=True, min_scale=1,
        include_x_axis=True, print_zeroes=False,
    )
    drawing.x_labels = list(chart.x_labels)
    for serie in chart.series:
        drawing.add(serie.name, list(serie.values))
    drawing.add_xml_filter(_accessible(chart))
    rendered: str = drawing.render()
    return rendered


def _accessible(chart: Chart) -> Callable[[Any], Any]:
    """An xml filter for pygal's tree (lxml or ElementTree): title and desc first, no script, no comment."""
    ident = f"chart-{chart.name}-{uuid.uuid4().hex[:8]}"

    def apply(root: Any) -> Any:
        for parent in list(root.iter()):
            for child in list(parent):
                if not isinstance(child.tag, str) or _local(child.tag) == "script" \
                        or (parent is root and _local(child.tag) in ("title", "desc")):
                    parent.remove(child)
        title = root.makeelement("title", {"id": f"{ident}-title"})
        title.text = chart.title
        desc = root.makeelement("desc", {"id": f"{ident}-desc"})
        desc.text = chart.description
        root.insert(0, desc)
        root.insert(0, title)
        root.set("role", "img")
        root.set("aria-labelledby", f"{ident}-title {ident}-desc")
        return root

    return apply


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
