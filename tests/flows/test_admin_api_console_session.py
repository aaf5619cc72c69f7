"""The admin API with an operator's console session (issue 19), over real HTTP: for each role, every operation of
the API's table is called, and exactly those its permissions allow succeed (with the answer the OpenAPI document
describes) while the others are 403 and change nothing; a call that changes something needs the session's CSRF
token and the broker's origin, and a fresh sign-in where the table says so."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from broker.core.audit import AuditKind
from broker.core.operators import ROLE_PERMISSIONS, Role
from broker.web.admin_api.table import OPERATIONS
from tests.flows.admin_api_support import AdminWorld, anna, api, conforms, csrf_token, staff
from tests.flows.federation import FixedClock
from tests.flows.federation_feed_support import add_file_source, federation_certificate
from tests.flows.portal_support import services
from tests.peers.browser import Browser

CI_APP = {"kind": "oidc", "document": json.dumps({"client_id": "ci-app", "redirect_uris": ["https://127.0.0.1:9/cb"],
                                                   "token_endpoint_auth_method": "client_secret_basic"})}
SP1 = {"kind": "saml", "party_id": "http://127.0.0.1:9/sp1"}
ROLE = {"party_id": SP1["party_id"], "role": "clerk"}
POLICY = {"document": 'version = "test"\n[default]\nconsent_exempt = true\n'}  # the text in force: unchanged


def _calls(citizen: str) -> list[tuple[str, str, str, dict[str, str] | None]]:
    """One call of every operation, in an order that leaves things as they were when all succeed."""
    feed = {"kind": "federation", "name": "ci-feed", "url": "http://127.0.0.1:9/md.xml",
            "certificate": federation_certificate().decode()}
    return [
        ("whoami", "GET", "/whoami", None),
        ("openapi", "GET", "/openapi.json", None),
        ("find-citizen", "GET", "/citizens?email=Anna@Example.org", None),
        ("show-citizen", "GET", f"/citizens/{citizen}", None),
        ("disable-citizen", "POST", f"/citizens/{citizen}/disable", {"reason": "hijacking"}),
        ("enable-citizen", "POST", f"/citizens/{citizen}/enable", None),
        ("list-audit", "GET", f"/audit?account={citizen}&limit=5", None),
        ("verify-audit", "POST", "/audit/verify", None),
        ("list-operators", "GET", "/operators", None),
        ("grant-role", "PUT", f"/operators/{citizen}/roles/auditor", None),
        ("revoke-role", "DELETE", f"/operators/{citizen}/roles/auditor", None),
        ("list-apps", "GET", "/apps", None),
        ("preview-app", "POST", "/apps/preview", CI_APP),
        ("register-app", "POST", "/apps", CI_APP),
        ("disable-app", "POST", "/apps/disable", SP1),
        ("enable-app", "POST", "/apps/enable", SP1),
        ("preview-app-settings", "POST", "/apps/settings/preview", SP1),  # no settings given: nothing changes
        ("set-app-settings", "POST", "/apps/settings", SP1),
        ("remove-app", "POST", "/apps/remove", {"kind": "oidc", "party_id": "ci-app"}),
        ("list-federations", "GET", "/federations", None),
        ("list-federation-entities", "GET", "/federations/saml-idp/self/entities?q=broker", None),
        ("refresh-federation", "POST", "/federations/refresh", {"name": "saml-idp/self"}),
        ("preview-federation-source", "POST", "/federations/preview", feed),
        ("add-federation-source", "POST", "/federations", feed),  # nothing listens there: added, its fetch fails
        ("remove-federation-source", "POST", "/federations/remove", {"kind": "federation", "name": "ci-feed"}),
        ("signing-keys", "GET", "/keys", None),
        ("rotate-keys", "POST", "/keys/rotate", {"step": "retire"}),  # nothing to retire: changes nothing
        ("release-policy", "GET", "/policy", None),
        ("preview-release-policy", "POST", "/policy/preview", POLICY),
        ("apply-release-policy", "PUT", "/policy", POLICY),
        ("release-policy-versions", "GET", "/policy/versions", None),
        ("list-app-roles", "GET", f"/app-roles?party_id={SP1['party_id']}", None),
        ("define-app-role", "POST", "/app-roles/define", {**ROLE, "description": "Clerk"}),
        ("assign-app-role", "POST", "/app-roles/assign", {**ROLE, "account_id": citizen}),
        ("unassign-app-role", "POST", "/app-roles/unassign", {**ROLE, "account_id": citizen}),
        ("map-app-role", "POST", "/app-roles/map", {**ROLE, "upstream": "op", "group": "g-clerks"}),
        ("unmap-app-role", "POST", "/app-roles/unmap", {**ROLE, "upstream": "op", "group": "g-clerks"}),
        ("remove-app-role", "POST", "/app-roles/remove", ROLE),
    ]


@pytest.mark.parametrize("role", list(Role))
def test_each_role_may_call_exactly_what_its_permissions_allow(world: AdminWorld, browser: Browser,
                                                               role: Role) -> None:
    citizen = anna(world)
    bob = staff(world, browser, role)
    token = csrf_token(world, browser)
    add_file_source(world.federation)  # "saml-idp/self", for the federation calls
    calls = _calls(citizen)
    assert {c[0] for c in calls} == {op.operation_id for op in OPERATIONS}  # a new operation joins this table
    held = ROLE_PERMISSIONS[role]
    svc = services(world.federation)
    grants = svc.operators
    assert grants is not None

    for operation_id, method, path, body in calls:
        op = next(o for o in OPERATIONS if o.operation_id == operation_id)
        answer = api(world, browser, method, path, body, csrf=token)
        may = op.permission is None or op.permission in held
        assert answer.status_code == (200 if may else 403), (role, operation_id, answer.text)
        if may:
            conforms(answer, operation_id)
        else:
            assert answer.json()["error"] == "forbidden"
        if operation_id == "disable-citizen":
            account = svc.accounts.get(citizen)
            assert account is not None and (account.disabled_at is not None) is may
        if operation_id == "grant-role":
            assert (Role.AUDITOR in grants.roles_of(citizen)) is may

    refusals = [r.reason for r in svc.audit.events(account_id=bob, limit=50) if r.kind == "operator-refused"]
    assert len(refusals) == sum(1 for op in OPERATIONS if op.permission is not None and op.permission not in held)
    assert grants.roles_of(citizen) == frozenset()


def test_whoami_names_the_operator_and_hands_out_the_csrf_token(world: AdminWorld, browser: Browser) -> None:
    bob = staff(world, browser, Role.SUPPORT, Role.AUDITOR)

    me = api(world, browser, "GET", "/whoami").json()

    assert (me["kind"], me["id"], me["roles"]) == ("operator", bob, ["auditor", "support"])
    assert "look-up-citizens" in me["permissions"] and "manage-citizens" not in me["permissions"]
    assert me["csrf_token"]


def test_an_admins_changes_are_audited_with_who_made_them_and_before_and_after(world: AdminWorld,
                                                                              browser: Browser) -> None:
    citizen = anna(world)
    bob = staff(world, browser, Role.ADMIN)
    token = csrf_token(world, browser)

    disabled = api(world, browser, "POST", f"/citizens/{citizen}/disable", {"reason": "hijacking"}, csrf=token)
    again = api(world, browser, "POST", f"/citizens/{citizen}/disable", {}, csrf=token)
    granted = api(world, browser, "PUT", f"/operators/{citizen}/roles/support", csrf=token)

    assert disabled.json() | {"sessions_ended": 0, "events_queued": 0} == {
        "account_id": citizen, "changed": True, "before": "enabled", "after": "disabled", "sessions_ended": 0,
        "events_queued": 0}
    assert (again.json()["changed"], again.json()["before"]) == (False, "disabled")
    assert granted.json() == {"account_id": citizen, "role": "support", "changed": True, "before": [],
                              "after": ["support"]}
    records = {r.kind: r.reason or "" for r in services(world.federation).audit.events(account_id=citizen)}
    assert f"by operator {bob}" in records[AuditKind.ACCOUNT_DISABLED.value]
    assert records[AuditKind.OPERATOR_ROLE_GRANTED.value] == (f"support granted by operator {bob}; "
                                                               "roles none -> support")
    grants = services(world.federation).operators
    assert grants is not None and [g.granted_by for g in grants.listing() if g.account_id == citizen] == [bob]


def test_the_last_admin_cannot_revoke_the_role_and_unknown_targets_are_404(world: AdminWorld,
                                                                           browser: Browser) -> None:
    bob = staff(world, browser, Role.ADMIN)
    token = csrf_token(world, browser)

    last = api(world, browser, "DELETE", f"/operators/{bob}/roles/admin", csrf=token)
    nobody = api(world, browser, "PUT", "/operators/no-such-account/roles/support", csrf=token)
    no_role = api(world, browser, "PUT", f"/operators/{bob}/roles/root", csrf=token)

    assert (last.status_code, last.json()["error"]) == (409, "last_admin")
    assert nobody.status_code == 404 and no_role.status_code == 404
    assert api(world, browser, "GET", "/citizens/no-such-account").status_code == 404
    assert api(world, browser, "GET", "/citizens").status_code == 400  # never a list of every citizen


def test_a_change_needs_the_csrf_token_and_the_brokers_origin(world: AdminWorld, browser: Browser) -> None:
    citizen = anna(world)
    staff(world, browser, Role.ADMIN)
    token = csrf_token(world, browser)
    path = f"/citizens/{citizen}/disable"

    without_token = api(world, browser, "POST", path, {})
    wrong_token = api(world, browser, "POST", path, {}, csrf=token[:-4] + "AAAA")
    foreign = api(world, browser, "POST", path, {}, csrf=token, origin="https://evil.example.org")
    null = api(world, browser, "POST", path, {}, csrf=token, origin="null")
    no_origin = api(world, browser, "POST", path, {}, csrf=token, origin=None)

    assert [a.status_code for a in (without_token, wrong_token, foreign, null, no_origin)] == [403] * 5
    assert {without_token.json()["error"], wrong_token.json()["error"]} == {"csrf_token_invalid"}
    assert {foreign.json()["error"], null.json()["error"], no_origin.json()["error"]} == {"cross_origin"}
    account = services(world.federation).accounts.get(citizen)
    assert account is not None and account.disabled_at is None
    assert api(world, browser, "POST", path, {}, csrf=token).status_code == 200  # the same call, done right


def test_without_a_console_session_nothing_is_answered(world: AdminWorld, browser: Browser) -> None:
    staff(world, browser, Role.ADMIN)
    sign_out = browser.submit(browser.get(f"{world.url}/console/"), form="console-sign-out")
    assert sign_out.status_code == 200

    for answer in (api(world, browser, "GET", "/whoami"), api(world, browser, "GET", "/audit")):
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert answer.json()["error"] == "unauthenticated"
    with Browser() as stranger:  # no cookie at all
        assert api(world, stranger, "GET", "/audit").status_code == 401
        assert api(world, stranger, "GET", "/openapi.json").status_code == 200  # the document is public


def test_disabling_needs_a_recent_sign_in_reading_does_not(world: AdminWorld, browser: Browser) -> None:
    citizen = anna(world)
    staff(world, browser, Role.ADMIN)
    token = csrf_token(world, browser)
    later = services(world.federation).clock.now() + timedelta(minutes=6)
    world.federation.set_clock(FixedClock(later))

    stale = api(world, browser, "POST", f"/citizens/{citizen}/disable", {}, csrf=token)
    grant = api(world, browser, "PUT", f"/operators/{citizen}/roles/support", csrf=token)

    assert (stale.status_code, stale.json()["error"]) == (403, "fresh_sign_in_required")
    assert (grant.status_code, grant.json()["error"]) == (403, "fresh_sign_in_required")
    assert api(world, browser, "GET", f"/citizens/{citizen}").status_code == 200
    account = services(world.federation).accounts.get(citizen)
    assert account is not None and account.disabled_at is None


def test_api_errors_are_json(world: AdminWorld, browser: Browser) -> None:
    staff(world, browser, Role.AUDITOR)

    missing = api(world, browser, "GET", "/no-such-thing")
    wrong_method = api(world, browser, "DELETE", "/audit")
    bad_limit = api(world, browser, "GET", "/audit?limit=0")

    for answer, status in ((missing, 404), (wrong_method, 405), (bad_limit, 400)):
        assert answer.status_code == status and answer.headers["Content-Type"].startswith("application/json")
        assert set(answer.json()) == {"error", "error_description"}
