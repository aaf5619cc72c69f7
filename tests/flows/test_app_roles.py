"""Roles for apps end to end (issue 19), with real peers: an authlib relying party and a pysaml2 SP sign in through
the broker with the authlib demo provider upstream.

An app receives the roles the operator gave the citizen *in that app* (assigned, or mapped from a group the
upstream sent at this sign-in) as the ``roles`` claim / the ``urn:civic-broker:attribute:roles`` attribute, only
when it asks, within the release policy and consent; never another app's roles.
"""

from __future__ import annotations

from pathlib import Path

from tests.flows.app_roles_support import citizen_account, define_and_assign, map_group, role_changes, upstream_groups
from tests.flows.app_settings import add_sp, answer_consent, release_policy
from tests.flows.consent_support import policy
from tests.flows.federation import UPSTREAM, Federation
from tests.flows.oidc_peers import relying_party
from tests.flows.oidc_to_oidc_support import sign_in
from tests.peers.browser import Browser

ROLES_SCOPE = "openid email roles"


def test_an_assigned_role_reaches_its_oidc_app_and_no_other(federation: Federation, browser: Browser) -> None:
    with relying_party(federation, "app-a", scope=ROLES_SCOPE) as a, \
            relying_party(federation, "app-b", scope=ROLES_SCOPE) as b:
        sign_in(browser, a)
        assert a.last.userinfo is not None and "roles" not in a.last.userinfo  # none defined yet: no claim
        account = citizen_account(federation)
        define_and_assign(federation, "app-a", "clerk", account)
        define_and_assign(federation, "app-b", "auditor", account)

        sign_in(browser, a)
        sign_in(browser, b)

        assert a.last.id_token_claims is not None and a.last.id_token_claims["roles"] == ["clerk"]
        assert a.last.userinfo is not None and a.last.userinfo["roles"] == ["clerk"]
        assert b.last.id_token_claims is not None and b.last.id_token_claims["roles"] == ["auditor"]
        assert b.last.userinfo is not None and b.last.userinfo["roles"] == ["auditor"]


def test_an_app_that_does_not_ask_gets_no_roles(federation: Federation, browser: Browser) -> None:
    with relying_party(federation, "app-a", scope="openid email profile") as a:
        sign_in(browser, a)
        define_and_assign(federation, "app-a", "clerk", citizen_account(federation))
        sign_in(browser, a)

        assert a.last.userinfo is not None and "roles" not in a.last.userinfo
        assert a.last.id_token_claims is not None and "roles" not in a.last.id_token_claims


def test_a_saml_app_receives_its_roles_as_one_multi_valued_attribute(federation: Federation, browser: Browser,
                                                                     key_folder: Path) -> None:
    sp3 = add_sp(federation, key_folder, "sp3", ("mail", "roles"))
    federation.login(browser, "sp3")
    account = citizen_account(federation)
    define_and_assign(federation, sp3.entity_id, "clerk", account)
    define_and_assign(federation, sp3.entity_id, "inspector", account)
    define_and_assign(federation, "http://127.0.0.1:9/sp1", "admin", account)  # sp1 does not ask for roles

    request_id, page = federation.login(browser, "sp3")
    identity = sp3.parse(browser.form_fields(page)["SAMLResponse"], request_id).get_identity()
    request_id, page = federation.login(browser, "sp1")
    other = federation.sps["sp1"].parse(browser.form_fields(page)["SAMLResponse"], request_id).get_identity()

    assert sorted(identity["roles"]) == ["clerk", "inspector"] and identity["mail"] == ["anna@example.org"]
    assert "roles" not in other


def test_a_role_mapped_from_an_upstream_group_follows_the_groups_of_this_sign_in(federation: Federation) -> None:
    with relying_party(federation, "app-a", scope=ROLES_SCOPE) as a:
        map_group(federation, "app-a", "staff", UPSTREAM, "g-staff-0001")
        map_group(federation, "app-a", "other-upstreams-staff", "another-upstream", "g-other")
        upstream_groups(federation, "g-staff-0001", "g-other")
        with Browser() as browser:
            sign_in(browser, a)
        assert a.last.id_token_claims is not None and a.last.id_token_claims["roles"] == ["staff"]

        upstream_groups(federation, "g-library")
        with Browser() as browser:
            sign_in(browser, a)
        assert a.last.userinfo is not None and "roles" not in a.last.userinfo
        assert a.last.id_token_claims is not None and "roles" not in a.last.id_token_claims


def test_the_consent_page_lists_roles_and_declining_them_keeps_them_out(federation: Federation,
                                                                        browser: Browser) -> None:
    policy(federation, 'version = "p1"\n')
    with relying_party(federation, "app-a", scope=ROLES_SCOPE) as a, \
            relying_party(federation, "app-b", scope=ROLES_SCOPE) as b:
        page = browser.get(f"{a.url}/login")
        assert 'id="claim-roles"' in page.text, page.text[:500]  # roles are asked for like any claim
        account = citizen_account(federation)
        define_and_assign(federation, "app-a", "clerk", account)
        define_and_assign(federation, "app-b", "clerk", account)
        answer_consent(browser, page, "allow", ("email",))
        assert a.last.userinfo is not None and "roles" not in a.last.userinfo  # declined

        page = browser.get(f"{b.url}/login")
        answer_consent(browser, page, "allow", ("email", "roles"))
        assert b.last.userinfo is not None and b.last.userinfo["roles"] == ["clerk"]


def test_a_policy_allow_list_without_roles_keeps_them_out(federation: Federation, browser: Browser) -> None:
    release_policy(federation, 'version = "p1"\n[default]\nconsent_exempt = true\n[apps.app-a]\n'
                               'allow = ["email", "email_verified"]\nconsent_exempt = true\n')
    with relying_party(federation, "app-a", scope=ROLES_SCOPE) as a:
        sign_in(browser, a)
        define_and_assign(federation, "app-a", "clerk", citizen_account(federation))
        sign_in(browser, a)

        assert a.last.userinfo is not None and set(a.last.userinfo) == {"sub", "email", "email_verified"}
        assert a.last.id_token_claims is not None and "roles" not in a.last.id_token_claims
    assert any("role clerk assigned by operator test" in reason for reason in role_changes(federation))
