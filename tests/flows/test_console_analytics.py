"""The console's analytics page (issue 19) over real HTTP: after real sign-ins and a rollup, an auditor sees the
figures as charts (SVG images served with a CSP of their own), tables and CSV downloads; a role without
``view-analytics`` sees none of it."""

from __future__ import annotations

import csv
import io

from lxml import etree  # type: ignore[import-untyped]  # lxml ships no type information

from broker.analytics import rollup
from broker.core.operators import Role
from broker.web.console_analytics import SVG_CSP
from tests.flows.console_support import console_operator
from tests.flows.federation import Federation
from tests.flows.portal_support import services
from tests.peers.browser import Browser


def _rolled_up(federation: Federation) -> None:
    svc = services(federation)
    assert rollup(svc.engine, svc.clock.now()).records > 0


def test_an_auditor_sees_the_figures_as_charts_tables_and_csv(federation: Federation, browser: Browser) -> None:
    console_operator(federation, browser, Role.AUDITOR)
    with Browser() as app_user:
        federation.login(app_user, "sp1")  # a sign-in at a SAML app, answered at once
    _rolled_up(federation)

    page = browser.get(f"{federation.url}/console/analytics/?days=7")
    assert page.status_code == 200 and "Sign-ins by app" in page.text, page.text[:500]
    assert federation.sps["sp1"].entity_id in page.text  # the app's sign-in is in a table
    chart = browser.get(f"{federation.url}/console/analytics/sign-ins-by-app.svg?days=7")
    assert chart.headers["Content-Type"].startswith("image/svg+xml")
    assert chart.headers["Content-Security-Policy"] == SVG_CSP
    svg = etree.fromstring(chart.content)
    assert svg.find("{http://www.w3.org/2000/svg}title") is not None
    assert b"<script" not in chart.content
    download = browser.get(f"{federation.url}/console/analytics/sign-ins-by-app.csv?days=7")
    rows = list(csv.reader(io.StringIO(download.text)))
    assert download.headers["Content-Disposition"].startswith("attachment") and len(rows) >= 2
    # the citizen's and the operator's sign-ins through the upstream were timed, from request to answer
    times = list(csv.reader(io.StringIO(browser.get(
        f"{federation.url}/console/analytics/login-time-by-upstream.csv?days=7").text)))
    assert times[0] == ["upstream", "median (ms)", "95th percentile (ms)"]
    assert [row[0] for row in times[1:]] == ["op"] and 0 < int(times[1][1]) <= int(times[1][2]) <= 60_000
    assert "Login time, median / 95th percentile" in page.text and "not measured" not in page.text


def test_support_sees_no_analytics(federation: Federation, browser: Browser) -> None:
    console_operator(federation, browser, Role.SUPPORT)
    for path in ("/console/analytics/", "/console/analytics/sign-ins-by-app.svg",
                 "/console/analytics/sign-ins-by-app.csv"):
        assert browser.get(f"{federation.url}{path}").status_code == 403, path
