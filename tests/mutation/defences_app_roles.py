"""Roles for apps (issue 19; ``broker.core.app_roles``, ``broker.storage.app_roles``): an app's ``roles`` claim holds
only that app's roles, from assignments and from groups of the upstream used for this sign-in; an upstream can never
assert roles itself."""

from __future__ import annotations

from tests.mutation.defence import Defence

FLOWS = "tests/flows/test_app_roles.py"

DEFENCES: tuple[Defence, ...] = (
    Defence(
        name="roles-of-another-app-never-leak",
        path="broker/storage/app_roles.py",
        old="""AppRoleRow.party_id == party_id, AppRoleAssignmentRow.account_id == account_id""",
        new="""AppRoleAssignmentRow.account_id == account_id""",
        tests=(f"{FLOWS}::test_an_assigned_role_reaches_its_oidc_app_and_no_other",
               "tests/storage/test_app_roles.py::test_roles_of_one_app_are_never_another_apps"),
        why="an app receives the roles the citizen holds in every other app (a clerk here is an admin there)",
    ),
    Defence(
        name="mapped-roles-need-the-sign-ins-upstream",
        path="broker/storage/app_roles.py",
        old="""AppRoleRow.party_id == party_id, AppRoleMappingRow.upstream == upstream,""",
        new="""AppRoleRow.party_id == party_id,""",
        tests=(f"{FLOWS}::test_a_role_mapped_from_an_upstream_group_follows_the_groups_of_this_sign_in",),
        why="any upstream that sends a group of the same name (a social login's user-chosen group) gets the role",
    ),
    Defence(
        name="an-upstream-cannot-assert-roles",
        path="broker/core/claims.py",
        old="""    return found if found is not None and found.name not in BROKER_ASSIGNED else None


def from_upstream_saml_name""",
        new="""    return found


def from_upstream_saml_name""",
        tests=("tests/core/test_app_roles.py::test_an_upstream_never_asserts_roles",),
        why="an upstream's own roles claim (Entra app roles) becomes the broker's roles for every app",
    ),
)
