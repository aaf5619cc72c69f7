"""Signing in to the citizen portal and finding the broker's services and the one account, shared by the portal's
flow tests."""

from __future__ import annotations

import requests

from broker.core.audit import AuditKind
from broker.web.services import Services
from tests.flows.federation import Federation
from tests.peers.browser import Browser


def services(federation: Federation) -> Services:
    found: Services = federation.app.extensions["broker"]
    return found


def portal_sign_in(federation: Federation, browser: Browser) -> requests.Response:
    page = browser.get(f"{federation.url}/account/")
    # no CSRF token on the signed-out page: it would open a session for every visitor (issue 15, point 3); the
    # origin check guards the form (tests/security/test_attack_session_store.py)
    assert page.status_code == 200 and "Sign in" in page.text and "csrf_token" not in page.text
    home = browser.submit(page)
    assert home.status_code == 200, home.text[:500]
    assert home.url == f"{federation.url}/account/"
    return home


def account_id(federation: Federation) -> str:
    rows = list(services(federation).audit.events(limit=100))
    ids = {r.account_id for r in rows if r.kind == AuditKind.LOGIN_SUCCEEDED.value and r.account_id}
    assert len(ids) == 1
    return ids.pop()
