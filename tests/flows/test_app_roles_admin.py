"""Managing roles for apps (issue 19): ``broker roles``, the console's "Roles for apps" page and the admin API, one
journey behind all three. Every change is audited with who made it and the state before and after; looking needs
``view-parties``, changing ``manage-parties`` (``support`` is refused with 403).
"""

from __future__ import annotations

import json
import re

import pytest
import requests

from broker.core.operators import OperatorGrant, Role
from tests.cli_support import run_cli
from tests.flows.app_roles_support import citizen_account, role_changes
from tests.flows.console_support import console_operator
from tests.flows.federation import UPSTREAM, Federation
from tests.flows.oidc_peers import relying_party
from tests.flows.oidc_to_oidc_support import sign_in
from tests.flows.portal_support import services
from tests.peers.browser import Browser

API = "/api/admin/v1"


def _cli(capsys: pytest.CaptureFixture[str], federation: Federation, *argv: str) -> tuple[int, str, str]:
    result = run_cli(capsys, "--config", str(federation.folder / "broker.toml"), "roles", *argv)
    return result.code, result.out, result.err


def test_the_cli_defines_assigns_maps_and_lists_roles_each_change_audited(
        federation: Federation, browser: Browser, capsys: pytest.CaptureFixture[str]) -> None:
    with relying_party(federation, "app-a", scope="openid email roles") as a:
        sign_in(browser, a)
        account = citizen_account(federation)

        assert _cli(capsys, federation, "define", "app-a", "clerk", "--description", "front desk")[0] == 0
        assert _cli(capsys, federation, "assign", "app-a", "clerk", account)[0] == 0
        assert _cli(capsys, federation, "map", "app-a", "clerk", "--upstream", UPSTREAM, "--group", "g-1")[0] == 0
        code, out, _ = _cli(capsys, federation, "list", "app-a", "--json")
        sign_in(browser, a)

    assert code == 0
    listing = json.loads(out)
    assert [r["name"] for r in listing["roles"]] == ["clerk"]
    assert [(x["role"], x["account_id"]) for x in listing["assignments"]] == [("clerk", account)]
    assert [(m["upstream"], m["group"]) for m in listing["mappings"]] == [(UPSTREAM, "g-1")]
    assert a.last.userinfo is not None and a.last.userinfo["roles"] == ["clerk"]
    reasons = role_changes(federation)
    assert any(r.startswith("role clerk assigned by cli") and "roles [] -> [clerk]" in r for r in reasons), reasons
    assert any("mapped from group 'g-1' of op by cli" in r for r in reasons), reasons

    assert _cli(capsys, federation, "unassign", "app-a", "clerk", account)[0] == 0
    assert _cli(capsys, federation, "unmap", "app-a", "clerk", "--upstream", UPSTREAM, "--group", "g-1")[0] == 0
    assert any("roles [clerk] -> []" in r for r in role_changes(federation))
    code, _, err = _cli(capsys, federation, "define", "no-such-app", "clerk")
    assert code == 1 and "no registered app" in err
    assert _cli(capsys, federation, "define", "app-a", "has space")[0] == 1
    assert _cli(capsys, federation, "assign", "app-a", "no-such-role", account)[0] == 1


def _csrf(federation: Federation, browser: Browser) -> str:
    whoami = browser.session.get(f"{federation.url}{API}/whoami", timeout=10)
    assert whoami.status_code == 200, whoami.text
    token: str = whoami.json()["csrf_token"]
    return token


def _api_post(federation: Federation, browser: Browser, path: str, body: dict[str, str]) -> requests.Response:
    return browser.session.post(f"{federation.url}{API}{path}", json=body, timeout=10,
                                headers={"Origin": federation.url, "X-CSRFToken": _csrf(federation, browser)})


def test_support_may_look_but_only_manage_parties_changes_roles(federation: Federation, browser: Browser) -> None:
    with relying_party(federation, "app-a", scope="openid email roles"):
        operator = console_operator(federation, browser, Role.SUPPORT)

        page = browser.get(f"{federation.url}/console/roles/", params={"party": "app-a"})
        assert page.status_code == 200 and 'id="roles"' in page.text and 'id="role-define"' not in page.text
        refused = browser.post(f"{federation.url}/console/roles/change",
                               {"csrf_token": _csrf(federation, browser), "party_id": "app-a",
                                "action": "define", "role": "clerk"}, initiator=page.url)
        assert refused.status_code == 403
        assert _api_post(federation, browser, "/app-roles/define", {"party_id": "app-a", "role": "clerk"}) \
            .status_code == 403
        listing = browser.session.get(f"{federation.url}{API}/app-roles", params={"party_id": "app-a"}, timeout=10)
        assert listing.status_code == 200 and listing.json()["roles"] == []
        assert role_changes(federation) == []

        svc = services(federation)
        assert svc.operators is not None
        svc.operators.grant(OperatorGrant(operator, Role.OPERATOR, "test", svc.clock.now()))  # read every request
        page = browser.get(f"{federation.url}/console/roles/", params={"party": "app-a"})
        done = browser.submit(page, {"role": "clerk", "description": "front desk"}, form="role-define")
        assert done.status_code == 200 and 'id="done"' in done.text, done.text[:500]
        done = browser.submit(done, {"role": "clerk", "account_id": operator}, form="role-assign")
        assert done.status_code == 200 and 'id="done"' in done.text, done.text[:500]
        answer = _api_post(federation, browser, "/app-roles/map",
                           {"party_id": "app-a", "role": "clerk", "upstream": UPSTREAM, "group": "g-staff"})
        assert answer.status_code == 200 and answer.json()["changed"] is True, answer.text
        assert answer.json()["after"] == [f"{UPSTREAM}:g-staff"]
        missing = _api_post(federation, browser, "/app-roles/assign",
                            {"party_id": "app-a", "role": "no-such-role", "account_id": operator})
        assert missing.status_code == 404

    reasons = role_changes(federation)
    by = rf"by operator {operator} \((operator|support, operator|operator, support)\)"  # who, with the roles held
    assert any(re.search(f"role clerk defined {by}", r) for r in reasons), reasons
    assert any(re.search(rf"role clerk assigned {by}; roles \[\] -> \[clerk\]", r) for r in reasons), reasons
    assert any(re.search(f"of op {by}", r) for r in reasons), reasons


def test_removing_a_role_removes_its_assignments(federation: Federation, browser: Browser,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with relying_party(federation, "app-a", scope="openid email roles") as a:
        sign_in(browser, a)
        account = citizen_account(federation)
        _cli(capsys, federation, "define", "app-a", "clerk")
        _cli(capsys, federation, "assign", "app-a", "clerk", account)
        assert _cli(capsys, federation, "remove", "app-a", "clerk")[0] == 0
        sign_in(browser, a)

        assert a.last.userinfo is not None and "roles" not in a.last.userinfo
    assert any("role clerk removed by cli" in r and "roles [clerk] -> []" in r for r in role_changes(federation))
