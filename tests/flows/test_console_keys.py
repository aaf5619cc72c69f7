"""The console's signing keys (issue 19), over real HTTP: the page shows the active keys and the next step;
"Stage" and "Switch" run the CLI's own rotation steps (``broker keys rotate``), audited with the operator and the
key ids before and after, and after the restart the page asks for, the JWKS at /oidc/jwks publishes exactly what
the page lists. A stale sign-in is sent to sign in again; roles without ``manage-keys`` cannot rotate."""

from __future__ import annotations

import re
from datetime import timedelta

import requests

from broker.core.audit import AuditKind
from broker.core.operators import Role
from tests.flows.console_support import console_operator
from tests.flows.federation import Federation, FixedClock
from tests.flows.federation_feed_support import restarts
from tests.flows.portal_support import services
from tests.peers.browser import Browser

PAGE = "/console/keys/"


def _jwks(federation: Federation) -> set[str]:
    return {key["kid"] for key in requests.get(federation.url + "/oidc/jwks", timeout=10).json()["keys"]}


def _kids(page: requests.Response, state: str) -> set[str]:
    """The key ids the page lists in ``state`` (active, next, previous)."""
    return set(re.findall(rf"<tr><td><code>([^<]+)</code></td><td>[A-Z0-9]+</td><td>{state}</td>", page.text))


def test_rotating_through_the_console_changes_the_published_jwks(federation: Federation, browser: Browser) -> None:
    operator = console_operator(federation, browser, Role.OPERATOR)
    keys = browser.get(federation.url + PAGE)
    active = _kids(keys, "active")
    assert keys.status_code == 200 and 'id="phase">steady' in keys.text and len(active) == 2, keys.text[:500]
    assert _jwks(federation) == active

    staged = browser.submit(keys, form="rotate-stage")

    assert staged.status_code == 200 and 'id="done"' in staged.text and "Restart every instance" in staged.text
    upcoming = _kids(staged, "next")
    assert len(upcoming) == 2 and _kids(staged, "active") == active
    assert _jwks(federation) == active  # this instance read the keys at start-up: the page said to restart
    with restarts(federation) as restart:
        restart()
        assert _jwks(federation) == active | upcoming  # published before they sign

        switched = browser.submit(browser.get(federation.url + PAGE), {"force": "yes"}, form="rotate-switch")
        assert _kids(switched, "active") == upcoming and _kids(switched, "previous") == active
        restart()
        assert _jwks(federation) == active | upcoming
        assert 'id="next-step">Retire' in browser.get(federation.url + PAGE).text
        records = [r.reason or "" for r in services(federation).audit.events(limit=30)  # before it is closed
                   if r.kind == AuditKind.KEY_ROTATED.value]
    assert len(records) == 2 and all(f"by operator {operator}" in r for r in records)
    assert records[0].startswith("switch (waiting period skipped)") and all(kid in records[0] for kid in upcoming)


def test_a_step_needs_a_recent_sign_in_and_runs_only_in_order(federation: Federation, browser: Browser) -> None:
    console_operator(federation, browser, Role.ADMIN)
    keys = browser.get(federation.url + PAGE)

    out_of_order = browser.submit(keys, {"force": "yes"}, form="rotate-switch")
    assert out_of_order.status_code == 409 and "no keys are staged" in out_of_order.text

    federation.set_clock(FixedClock(services(federation).clock.now() + timedelta(minutes=6)))
    again = browser.submit(keys, form="rotate-stage")
    assert "sign in again" in again.text
    assert not (federation.folder / "certs" / "next").exists()
    assert not [r for r in services(federation).audit.events(limit=30) if r.kind == AuditKind.KEY_ROTATED.value]


def test_roles_without_manage_keys_may_look_but_not_rotate(federation: Federation, browser: Browser) -> None:
    console_operator(federation, browser, Role.SUPPORT, Role.AUDITOR)
    keys = browser.get(federation.url + PAGE)
    assert keys.status_code == 200 and 'id="rotate-stage"' not in keys.text
    token = keys.text.split('name="csrf_token" value="')[1].split('"')[0]

    posted = browser.post(f"{federation.url}/console/keys/rotate", {"csrf_token": token, "step": "stage"},
                          initiator=federation.url + PAGE)

    assert posted.status_code == 403 and not (federation.folder / "certs" / "next").exists()
