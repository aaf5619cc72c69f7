"""Operators sign in to the console through the broker itself (issue 19), over real HTTP with the demo provider
upstream (which asserts no ``acr``) and an authenticator app enrolled at the broker: the console's required level
(REFEDS MFA) is reached by the step-up, always with a fresh sign-in; the console session is apart from the SSO
session, ends with it, and follows the account's roles at every request. What each role may not open is tested
as much as what it may.
"""

from __future__ import annotations

from datetime import timedelta

import pyotp
import requests

from broker.core.audit import AuditKind
from broker.core.operators import OperatorGrant, Role
from broker.storage.authenticators import new_totp_secret
from broker.web.console import COOKIE
from tests.flows.federation import Federation, FixedClock
from tests.flows.portal_support import account_id, portal_sign_in, services
from tests.peers.browser import Browser


def _citizen_with_app(federation: Federation, browser: Browser, *roles: Role) -> tuple[str, str]:
    """The citizen signs in to the portal (which makes the account), gets an authenticator app and ``roles``;
    their account id and the app's secret."""
    portal_sign_in(federation, browser)
    account, svc = account_id(federation), services(federation)
    secret = new_totp_secret()
    svc.authenticators.add_totp(account, "phone", secret, svc.clock.now())
    assert svc.operators is not None
    for role in roles:
        assert svc.operators.grant(OperatorGrant(account, role, "test", svc.clock.now()))
    return account, secret


def _console_sign_in(federation: Federation, browser: Browser, secret: str, path: str = "/console/") \
        -> requests.Response:
    page = browser.get(f"{federation.url}{path}")
    assert page.status_code == 200 and "Sign in to the console" in page.text, page.text[:300]
    factor = browser.submit(page)
    assert factor.status_code == 200 and "Confirm it is you" in factor.text, factor.text[:300]
    return browser.submit(factor, {"code": pyotp.TOTP(secret).now()})


def _kinds(federation: Federation) -> list[str]:
    return [r.kind for r in services(federation).audit.events(limit=200)]


def test_an_admin_signs_in_afresh_with_a_second_factor_and_sees_the_console(federation: Federation,
                                                                             browser: Browser) -> None:
    account, secret = _citizen_with_app(federation, browser, Role.ADMIN)
    authorizations = federation.provider.hits("authorize")

    home = _console_sign_in(federation, browser, secret)

    assert home.status_code == 200 and home.url == f"{federation.url}/console/", home.text[:300]
    assert account in home.text and "admin" in home.text and "manage-operators" in home.text
    # a fresh sign-in at the upstream, though the browser's SSO session was live
    assert federation.provider.hits("authorize") == authorizations + 1
    cookie = next(c for c in browser.session.cookies if c.name == COOKIE)
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.path == "/"
    assert browser.get(f"{federation.url}/console/operators").status_code == 200
    assert AuditKind.OPERATOR_SIGNED_IN.value in _kinds(federation)


def test_the_citizens_own_session_does_not_open_the_console(federation: Federation, browser: Browser) -> None:
    _citizen_with_app(federation, browser, Role.ADMIN)

    for path in ("/console/", "/console/operators", "/console/audit"):
        page = browser.get(f"{federation.url}{path}")
        assert page.status_code == 200 and "Sign in to the console" in page.text, path
        assert "Operators" not in page.text
    assert browser.post(f"{federation.url}/console/audit/verify", {},
                        initiator=f"{federation.url}/console/").status_code in (200, 400)
    assert not any(c.name == COOKIE for c in browser.session.cookies)


def test_an_account_without_a_role_is_refused_and_audited(federation: Federation, browser: Browser) -> None:
    _, secret = _citizen_with_app(federation, browser)

    refused = _console_sign_in(federation, browser, secret)

    assert refused.status_code == 403 and "may not use" in refused.text
    assert not any(c.name == COOKIE for c in browser.session.cookies)
    assert AuditKind.OPERATOR_REFUSED.value in _kinds(federation)


def test_support_may_not_see_the_audit_trail_or_the_operators(federation: Federation, browser: Browser) -> None:
    _, secret = _citizen_with_app(federation, browser, Role.SUPPORT)
    home = _console_sign_in(federation, browser, secret)
    assert home.status_code == 200 and "look-up-citizens" in home.text and "view-audit" not in home.text

    for path in ("/console/audit", "/console/operators"):
        assert browser.get(f"{federation.url}{path}").status_code == 403, path
    refusals = [r for r in services(federation).audit.events(limit=50) if r.kind == AuditKind.OPERATOR_REFUSED.value]
    assert {r.reason for r in refusals} == {"view-audit not allowed to roles support",
                                            "manage-operators not allowed to roles support"}


def test_an_auditor_reads_and_verifies_the_audit_trail(federation: Federation, browser: Browser) -> None:
    _, secret = _citizen_with_app(federation, browser, Role.AUDITOR)
    _console_sign_in(federation, browser, secret)

    page = browser.get(f"{federation.url}/console/audit")
    assert page.status_code == 200 and "operator-signed-in" in page.text
    verified = browser.submit(page, form="verify-chain")
    assert verified.status_code == 200 and "The audit trail is intact" in verified.text
    assert browser.get(f"{federation.url}/console/operators").status_code == 403


def test_a_revoked_role_ends_the_console_session_at_the_next_request(federation: Federation,
                                                                      browser: Browser) -> None:
    account, secret = _citizen_with_app(federation, browser, Role.OPERATOR)
    _console_sign_in(federation, browser, secret)
    operators = services(federation).operators
    assert operators is not None and browser.get(f"{federation.url}/console/").status_code == 200

    assert operators.revoke(account, Role.OPERATOR)

    page = browser.get(f"{federation.url}/console/")
    assert "Sign in to the console" in page.text and account not in page.text


def test_signing_out_of_the_account_ends_the_console_session(federation: Federation, browser: Browser) -> None:
    account, secret = _citizen_with_app(federation, browser, Role.ADMIN)
    _console_sign_in(federation, browser, secret)

    sign_out = browser.get(f"{federation.url}/account/sign-out")
    browser.submit(sign_out, form="sign-out")

    page = browser.get(f"{federation.url}/console/")
    assert "Sign in to the console" in page.text and account not in page.text


def test_signing_out_of_the_console_keeps_the_account_signed_in(federation: Federation, browser: Browser) -> None:
    _, secret = _citizen_with_app(federation, browser, Role.ADMIN)
    home = _console_sign_in(federation, browser, secret)

    done = browser.submit(home, form="console-sign-out")
    assert done.status_code == 200 and "Signed out of the console" in done.text
    assert "Sign in to the console" in browser.get(f"{federation.url}/console/").text
    assert "Sign-in methods" in browser.get(f"{federation.url}/account/").text  # the portal's menu: signed in


def test_the_console_session_ends_when_idle_and_after_its_lifetime(federation: Federation,
                                                                   browser: Browser) -> None:
    _, secret = _citizen_with_app(federation, browser, Role.ADMIN)
    _console_sign_in(federation, browser, secret)
    now = services(federation).clock.now()

    federation.set_clock(FixedClock(now + timedelta(minutes=14)))
    assert browser.get(f"{federation.url}/console/").status_code == 200  # within the idle time: pushed on
    federation.set_clock(FixedClock(now + timedelta(minutes=14 + 16)))
    assert "Sign in to the console" in browser.get(f"{federation.url}/console/").text
