"""``broker analytics``: roll the audit trail up into the analytics aggregates, and print the figures (issue 19;
``broker.analytics``).

    broker analytics rollup [--batch-size N] [--json]   count the audit records added since the last rollup
    broker analytics report [--days N] [--json]         the figures of the last N days (UTC, today included)
    broker analytics report [--days N] --csv FIGURE     one figure's table as CSV (--svg FIGURE: its chart)

``broker worker`` rolls up every five minutes by itself; without a worker, run ``broker analytics rollup`` from
cron or a systemd timer (it is safe to run while the broker serves, and two at once count each record once).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from broker.analytics.figures import seconds
from broker.analytics.model import Report, Share, Total
from broker.cli.common import JSON_HELP, settings_of


def cmd_rollup(args: argparse.Namespace) -> int:
    from broker.analytics.rollup import BATCH, rollup
    from broker.core.model import utcnow
    from broker.storage import create_engine_for

    engine = create_engine_for(settings_of(args).database_url)
    try:
        report = rollup(engine, utcnow(), batch=args.batch_size or BATCH)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(asdict(report)))
    else:
        print(f"rolled up {report.records} audit records in {report.batches} batches; watermark {report.watermark}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from broker.analytics import AnalyticsQueries
    from broker.analytics.charts import csv_of, svg_of, table_of
    from broker.analytics.figures import FIGURES
    from broker.core.model import utcnow
    from broker.storage import create_engine_for

    name = args.csv or args.svg
    if name and name not in FIGURES:
        print(f"broker: no figure {name!r}; the figures are: {', '.join(sorted(FIGURES))}", file=sys.stderr)
        return 2
    last = utcnow().date()
    engine = create_engine_for(settings_of(args).database_url)
    try:
        report = AnalyticsQueries(engine).report(last - timedelta(days=args.days - 1), last)
    finally:
        engine.dispose()
    if args.csv:
        print(csv_of(table_of(FIGURES[args.csv](report))), end="")
    elif args.svg:
        print(svg_of(FIGURES[args.svg](report)))
    elif args.json:
        print(json.dumps(asdict(report), default=str, indent=2))
    else:
        print("\n".join(report_lines(report)))
    return 0


def report_lines(report: Report) -> list[str]:
    """The figures as lines of text."""

    def share(s: Share, what: str) -> str:
        return f"{s.part} of {s.whole} {what}" + (f" ({s.ratio:.1%})" if s.ratio is not None else "")

    def listed(totals: tuple[Total, ...] | dict[str, int]) -> str:
        pairs = totals.items() if isinstance(totals, dict) else ((t.key, t.count) for t in totals)
        return ", ".join(f"{k or '(none)'} {n}" for k, n in pairs) or "none"

    status, citizens, segments = report.rollup, report.citizens, report.segments
    behind = f"; {status.behind} newer records not yet rolled up" if status.behind else ""
    return [
        f"analytics from {report.first} to {report.last} (UTC), rolled up to audit record {status.watermark}{behind}",
        f"sign-ins: {report.sign_ins_by_upstream.total()}",
        f"  by upstream: {listed(_ordered(report.sign_ins_by_upstream.totals()))}",
        f"  by app: {listed(_ordered(report.sign_ins_by_app.totals()))}",
        f"citizens signed in: {citizens.active}, returning {citizens.returning}; new accounts: {citizens.new}",
        f"linking: {share(report.linking, 'new accounts')} (identities linked per new account)",
        f"failed logins by reason: {listed(report.failures_by_reason)}",
        f"consent declined by app: {listed(report.consent_declines_by_app)}",
        f"  claims declined: {listed(report.claim_declines)}",
        f"login time: median {seconds(report.login_times.p50_ms)}, 95th percentile "
        f"{seconds(report.login_times.p95_ms)} ({report.login_times.timed} logins citizens waited through)",
        f"second factor verified: {share(report.step_up, 'sign-ins')}",
        f"  second-factor events by outcome: {listed(report.second_factor_outcomes)}",
        f"MFA adoption: {share(report.mfa_adoption, 'citizens signed in have a second factor')}",
        f"citizens by upstreams used: {', '.join(f'{s.label} {s.citizens}' for s in segments.upstream_mix)}",
        f"citizens by apps used: {', '.join(f'{s.label} {s.citizens}' for s in segments.apps_used)}",
        f"citizens by assurance reached: {', '.join(f'{s.label} {s.citizens}' for s in segments.assurance)}",
        "login time p50/p95: not measured (the audit records hold no duration)",
    ]


def _ordered(totals: dict[str, int]) -> dict[str, int]:
    return dict(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))


def _days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 3660:
        raise argparse.ArgumentTypeError("must be a whole number of days from 1 to 3660")
    return int(text)


def _batch_size(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise argparse.ArgumentTypeError("must be a whole number from 1 to 100000")
    return int(text)


def add_commands(sub: Any) -> None:
    analytics = sub.add_parser("analytics", help="sign-in figures from the audit trail").add_subparsers(
        dest="analytics", required=True)
    p = analytics.add_parser("rollup", help="count the audit records added since the last rollup")
    p.add_argument("--batch-size", type=_batch_size, default=None,
                   help="audit records per transaction (default 5000)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_rollup)
    p = analytics.add_parser("report", help="the figures of the last days, as of the last rollup")
    p.add_argument("--days", type=_days, default=30, help="how many days, today included (default 30)")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--csv", metavar="FIGURE", help="print one figure's table as CSV (sign-ins-by-upstream, "
                       "sign-ins-by-app, citizens-per-day, failures-by-reason, ...: a wrong name lists them)")
    shown.add_argument("--svg", metavar="FIGURE", help="print one figure's chart as SVG (names as for --csv)")
    shown.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_report)
