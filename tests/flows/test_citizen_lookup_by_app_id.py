"""The help desk finds a citizen by the id an app knows them by (issue 19): an app's own support desk reads the
pairwise identifier from its records (a SAML app's persistent NameID, an OpenID app's ``sub``) and the broker's
support operator finds the account from it, in the console and through the admin API, with a pysaml2 SP and an
authlib relying party as the apps. Identifiers are pairwise: one app's id for the citizen finds nobody at another."""

from __future__ import annotations

from urllib.parse import urlencode

from broker.core.audit import AuditKind
from broker.core.operators import Role
from tests.flows.admin_api_support import AdminWorld, anna, api, choose, set_roles, staff
from tests.flows.oidc_peers import relying_party
from tests.flows.portal_support import services
from tests.peers.browser import Browser


def _name_id_at_saml_app(world: AdminWorld) -> str:
    """Anna signs in to the SAML app sp1 through "op"; the persistent NameID the app received."""
    fed = world.federation
    with Browser() as browser:
        request_id, discovery = fed.login(browser, "sp1")
        page = choose(browser, discovery, "op")
        response = fed.sps["sp1"].parse(browser.form_fields(page)["SAMLResponse"], request_id)
    name_id: str = response.assertion.subject.name_id.text
    return name_id


def _find(world: AdminWorld, browser: Browser, app: str, subject: str) -> list[str]:
    answer = api(world, browser, "GET", "/citizens?" + urlencode({"app": app, "subject": subject}))
    assert answer.status_code == 200, answer.text
    found: list[str] = answer.json()["accounts"]
    return found


def test_support_finds_a_citizen_by_the_id_a_saml_or_openid_app_knows(world: AdminWorld, browser: Browser) -> None:
    citizen = anna(world)
    name_id = _name_id_at_saml_app(world)
    with relying_party(world.federation) as rp, Browser() as anna_browser:
        choose(anna_browser, anna_browser.get(f"{rp.url}/login"), "op")
        assert rp.last.id_token_claims is not None
        sub, client_id = str(rp.last.id_token_claims["sub"]), rp.client_id
    sp1 = world.federation.sps["sp1"].entity_id
    staff(world, browser, Role.SUPPORT)

    page = browser.get(f"{world.url}/console/citizens?" + urlencode({"how": "app", "app": sp1, "value": name_id}))
    assert page.status_code == 200 and f"/console/citizens/{citizen}" in page.text, page.text[:2000]
    assert _find(world, browser, sp1, name_id) == [citizen]
    assert _find(world, browser, client_id, sub) == [citizen]
    # pairwise: each app's id names the citizen at that app only; a made-up id names no one
    assert sub != name_id and _find(world, browser, sp1, sub) == [] and _find(world, browser, client_id, name_id) == []
    assert _find(world, browser, sp1, "not-an-id") == [] and _find(world, browser, "https://no.such.app/", sub) == []
    lookups = [r.reason or "" for r in services(world.federation).audit.events(account_id=citizen, limit=100)
               if r.kind == AuditKind.OPERATOR_LOOKUP.value]
    assert sorted(lookups) == sorted([f"looked up by the id app {app} knows by operator {world.bob} (support)"
                                      for app in (sp1, sp1, client_id)])
    assert all(name_id not in reason and sub not in reason for reason in lookups)  # the id is not written down


def test_the_api_wants_the_subject_with_the_app_and_an_auditor_may_not_look(world: AdminWorld,
                                                                            browser: Browser) -> None:
    staff(world, browser, Role.SUPPORT)
    sp1 = world.federation.sps["sp1"].entity_id
    answer = api(world, browser, "GET", "/citizens?" + urlencode({"app": sp1}))
    assert answer.status_code == 400 and "app with subject" in answer.json()["error_description"]
    set_roles(world, world.bob, Role.AUDITOR)
    refused = api(world, browser, "GET", "/citizens?" + urlencode({"app": sp1, "subject": "x"}))
    assert refused.status_code == 403
