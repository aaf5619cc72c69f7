"""Analytics for the operator (issue 19): aggregates kept beside the audit trail, the figures read from them, and
their charts, tables and CSV. The console's pages are built on this package; ``broker analytics`` prints it.

- ``rollup`` (``broker.analytics.rollup``): audit records after the watermark, in bounded batches, into daily counts
  and per-account facts (``broker.storage.analytics_tables``); incremental, idempotent, safe with several workers.
- ``AnalyticsQueries`` (``broker.analytics.queries``): the figures for a range of days (``broker.analytics.model``),
  from the aggregates only.
- ``FIGURES`` (``broker.analytics.figures``) and ``broker.analytics.charts``: each figure as a chart (accessible SVG,
  no JavaScript), a table and CSV.

Not measured, because the audit trail does not hold it:

- login time (p50/p95): no record says when a login began. Measuring it needs the time the app's request arrived
  carried through the pending state to the answer (a ``started_at`` on ``LoginRequest``, set in
  ``journeys.login.begin``) and the elapsed time written beside the ``login-succeeded`` record (a table outside the
  hash chain); the rollup would then keep a fixed-bucket histogram per day (a ``Metric`` with the bucket as detail),
  from which p50 and p95 are read to the bucket's precision.
- consent declines by claim: a ``consent-declined`` record names the app, not the claims the page asked for.
- the upstream's own assurance level (acr): not in the audit records; "assurance reached" is whether the account
  verified a second factor at the broker.
"""

from broker.analytics.model import Report
from broker.analytics.queries import AnalyticsQueries
from broker.analytics.rollup import PeriodicRollup, RollupReport, rollup

__all__ = ["AnalyticsQueries", "PeriodicRollup", "Report", "RollupReport", "rollup"]
