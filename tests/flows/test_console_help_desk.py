"""The help desk finds why a named citizen's sign-in failed, without seeing the citizen's claims (issue 19, "Done
when"), over real HTTP: Anna signs in through the demo provider "op" and declines to share her information with an
OpenID app (a real authlib client, which hears ``access_denied``); Bob, of the city's staff, signs in to the console
through the provider "other" (the only upstream ``[console] upstreams`` allows staff) with his authenticator app,
finds Anna by her e-mail address and reads the failure; only an ``admin`` who signed in within
``reauth_minutes`` may show her claims, and every look-up and reveal is in Anna's own audit trail.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import lxml.html  # type: ignore[import-untyped]  # lxml ships no type information
import pyotp
import pytest
import requests

from broker.core.audit import AuditKind
from broker.core.operators import OperatorGrant, Role
from broker.storage.authenticators import new_totp_secret
from tests.databases import BACKENDS, database_for
from tests.flows.consent_support import policy
from tests.flows.federation import CITIZEN, ExtraUpstream, Federation, FixedClock, running_federation
from tests.flows.linking_support import BOB, BOB_SUB, DemoUpstream
from tests.flows.oidc_peers import relying_party
from tests.flows.portal_support import services
from tests.peers.browser import Browser

STAFF_ONLY_OTHER = '\n[console]\nupstreams = ["other"]\n'
ANNAS_CLAIMS = ("Anna", "Virtanen", "anna@example.org")


@dataclass
class HelpDesk:
    federation: Federation
    other: DemoUpstream


@pytest.fixture(params=BACKENDS)
def desk(request: pytest.FixtureRequest, tmp_path: Path, key_folder: Path) -> Iterator[HelpDesk]:
    other = DemoUpstream("other")
    database = database_for(request.param, tmp_path)
    try:
        with running_federation(tmp_path / "instance", key_folder, next(database), extra_config=STAFF_ONLY_OTHER,
                                extra_upstreams=[ExtraUpstream("other", other.build)]) as federation:
            other.sign_in_as(BOB)
            yield HelpDesk(federation, other)
    finally:
        for _ in database:
            pass


def _choose(browser: Browser, discovery: requests.Response, upstream: str) -> requests.Response:
    """Press "Sign in with ..." for ``upstream`` on the discovery page."""
    forms = lxml.html.fromstring(discovery.text).forms
    index = next(i for i, f in enumerate(forms) if (f.action or "").endswith(f"/{upstream}"))
    return browser.submit(discovery, form=index)


def _staff(desk: HelpDesk, browser: Browser, *roles: Role) -> tuple[str, str]:
    """Bob signs in to the portal through "other", gets an authenticator app and ``roles``; his account id and
    the app's secret."""
    fed, svc = desk.federation, services(desk.federation)
    home = _choose(browser, browser.submit(browser.get(f"{fed.url}/account/")), "other")
    assert home.status_code == 200 and home.url == f"{fed.url}/account/", home.text[:300]
    issuer = svc.registry.upstream("other")
    assert issuer is not None and svc.operators is not None
    account = svc.accounts.find_by_identity(issuer.issuer, BOB_SUB)
    assert account is not None
    secret = new_totp_secret()
    svc.authenticators.add_totp(account.account_id, "phone", secret, svc.clock.now())
    for role in roles:
        svc.operators.grant(OperatorGrant(account.account_id, role, "test", svc.clock.now()))
    return account.account_id, secret


def _console(desk: HelpDesk, browser: Browser, secret: str) -> requests.Response:
    """The console's sign-in: straight to "other" (the only staff upstream), then the authenticator app."""
    page = browser.get(f"{desk.federation.url}/console/")
    factor = browser.submit(page)
    assert "Confirm it is you" in factor.text, factor.text[:300]
    home = browser.submit(factor, {"code": pyotp.TOTP(secret).now()})
    assert home.status_code == 200 and "Operator console" in home.text, home.text[:300]
    return home


def _anna_declines_the_app(desk: HelpDesk) -> str:
    """Anna's sign-in at the OpenID app fails: she declines to share; her account id."""
    fed = desk.federation
    policy(fed, 'version = "p1"\n')
    with relying_party(fed) as rp, Browser() as anna:
        consent = _choose(anna, anna.get(f"{rp.url}/login"), "op")
        assert "Share your information with" in consent.text, consent.text[:300]
        form = lxml.html.fromstring(consent.text).forms[0]
        fields = [(k, v) for k, v in anna.form_fields(consent).items() if k != "claim"] + [("decision", "deny")]
        declined = anna.post(requests.compat.urljoin(consent.url, form.action), fields, initiator=consent.url)
        answer = anna.submit(declined)  # the sentence first, then "Return to the app" (issue 20)
        assert rp.last.error == "access_denied", answer.text[:300]
    svc = services(fed)
    issuer = svc.registry.upstream("op")
    assert issuer is not None
    account = svc.accounts.find_by_identity(issuer.issuer, str(CITIZEN.claims["sub"]))
    assert account is not None
    return account.account_id


def _find_by_email(desk: HelpDesk, browser: Browser) -> requests.Response:
    search = browser.get(f"{desk.federation.url}/console/citizens")
    assert search.status_code == 200
    return browser.submit(search, {"how": "email", "value": "Anna@Example.org"}, form=1)


def test_support_finds_why_a_named_citizens_sign_in_failed_without_seeing_her_claims(desk: HelpDesk,
                                                                                       browser: Browser) -> None:
    bob, secret = _staff(desk, browser, Role.SUPPORT)
    anna = _anna_declines_the_app(desk)
    _console(desk, browser, secret)

    found = _find_by_email(desk, browser)
    assert found.status_code == 200 and f"/console/citizens/{anna}" in found.text, found.text[:2000]
    summary = browser.get(f"{desk.federation.url}/console/citizens/{anna}")

    assert summary.status_code == 200
    failures = lxml.html.fromstring(summary.text).xpath("//h2[@id='failures']/following-sibling::table[1]//td")
    assert {"consent-declined", "city-app"} <= {cell.text_content() for cell in failures}, summary.text[:3000]
    assert not any(value in summary.text for value in ANNAS_CLAIMS)
    assert 'id="reveal"' not in summary.text  # support may not show claims: no button, and no way round it
    assert browser.post(f"{desk.federation.url}/console/citizens/{anna}/reveal", {},
                        initiator=summary.url).status_code in (400, 403)
    lookups = [r for r in services(desk.federation).audit.events(account_id=anna)
               if r.kind == AuditKind.OPERATOR_LOOKUP.value]
    assert lookups and all(bob in (r.reason or "") for r in lookups)
    assert not any("@" in (r.reason or "") for r in lookups)  # the address looked up is never written down


def test_an_unknown_address_finds_nobody_and_a_wrong_role_cannot_search(desk: HelpDesk, browser: Browser) -> None:
    _, secret = _staff(desk, browser, Role.AUDITOR)
    _console(desk, browser, secret)
    assert browser.get(f"{desk.federation.url}/console/citizens?how=email&value=anna@example.org").status_code == 403


def test_an_admin_reveals_the_claims_only_after_a_recent_sign_in(desk: HelpDesk, browser: Browser) -> None:
    _, secret = _staff(desk, browser, Role.ADMIN)
    anna = _anna_declines_the_app(desk)
    _console(desk, browser, secret)
    summary = browser.get(f"{desk.federation.url}/console/citizens/{anna}")

    shown = browser.submit(summary, form="reveal")
    assert shown.status_code == 200 and all(value in shown.text for value in ANNAS_CLAIMS)
    reveals = [r for r in services(desk.federation).audit.events(account_id=anna)
               if r.kind == AuditKind.OPERATOR_REVEAL.value]
    assert len(reveals) == 1 and "email" in (reveals[0].reason or "")

    later = services(desk.federation).clock.now() + timedelta(minutes=6)
    desk.federation.set_clock(FixedClock(later))
    again = browser.submit(browser.get(f"{desk.federation.url}/console/citizens/{anna}"), form="reveal")
    assert "sign in again" in again.text and not any(value in again.text for value in ANNAS_CLAIMS)


def test_an_admin_disables_and_enables_an_account_from_the_console(desk: HelpDesk, browser: Browser) -> None:
    _, secret = _staff(desk, browser, Role.ADMIN)
    anna = _anna_declines_the_app(desk)
    _console(desk, browser, secret)
    summary = browser.get(f"{desk.federation.url}/console/citizens/{anna}")

    disabled = browser.submit(summary, {"reason": "hijacking"}, form="account-status")
    assert disabled.status_code == 200 and "disabled since" in disabled.text, disabled.text[:500]
    with Browser() as again:
        refused = _choose(again, again.submit(again.get(f"{desk.federation.url}/account/")), "op")
        assert refused.status_code == 403 and "has been disabled" in refused.text
    enabled = browser.submit(disabled, form="account-status")
    assert "Enable the account" not in enabled.text and "Disable the account" in enabled.text
    kinds = [r.kind for r in services(desk.federation).audit.events(account_id=anna)]
    assert AuditKind.ACCOUNT_DISABLED.value in kinds and AuditKind.ACCOUNT_ENABLED.value in kinds


def test_support_may_not_disable_an_account(desk: HelpDesk, browser: Browser) -> None:
    _, secret = _staff(desk, browser, Role.SUPPORT)
    anna = _anna_declines_the_app(desk)
    _console(desk, browser, secret)
    summary = browser.get(f"{desk.federation.url}/console/citizens/{anna}")
    assert 'id="account-status"' not in summary.text
    token = lxml.html.fromstring(summary.text).xpath("//input[@name='csrf_token']/@value")[0]
    forced = browser.post(f"{desk.federation.url}/console/citizens/{anna}/status",
                          {"csrf_token": token, "action": "disable"}, initiator=summary.url)
    assert forced.status_code == 403
    account = services(desk.federation).accounts.get(anna)
    assert account is not None and account.disabled_at is None
