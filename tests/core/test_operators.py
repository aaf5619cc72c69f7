"""Operator roles (``broker.core.operators``; issue 19): the permission table, as explicit about what a role may
not do as about what it may."""

from __future__ import annotations

import pytest

from broker.core.operators import ROLE_PERMISSIONS, Permission, Role, allowed, parse_role, permissions_of

P = Permission
EXPECTED: dict[Role, set[Permission]] = {
    Role.ADMIN: set(Permission),
    Role.OPERATOR: {P.VIEW_PARTIES, P.MANAGE_PARTIES, P.MANAGE_KEYS, P.VIEW_AUDIT, P.VIEW_ANALYTICS},
    Role.SUPPORT: {P.LOOK_UP_CITIZENS, P.VIEW_PARTIES},
    Role.AUDITOR: {P.VIEW_AUDIT, P.VIEW_ANALYTICS, P.VIEW_PARTIES},
}


@pytest.mark.parametrize("role", list(Role))
def test_each_role_holds_exactly_its_permissions(role: Role) -> None:
    assert set(ROLE_PERMISSIONS[role]) == EXPECTED[role]
    for permission in Permission:
        assert allowed([role], permission) is (permission in EXPECTED[role])


def test_only_an_admin_reveals_claims_manages_citizens_or_grants_roles() -> None:
    for permission in (P.REVEAL_CLAIMS, P.MANAGE_CITIZENS, P.MANAGE_OPERATORS):
        assert [r for r in Role if allowed([r], permission)] == [Role.ADMIN]


def test_roles_add_up_and_none_allows_nothing() -> None:
    assert permissions_of([Role.SUPPORT, Role.AUDITOR]) == EXPECTED[Role.SUPPORT] | EXPECTED[Role.AUDITOR]
    assert permissions_of([]) == frozenset() and not allowed([], P.VIEW_PARTIES)


def test_role_names_are_read_leniently_and_unknown_ones_name_the_roles() -> None:
    assert parse_role(" Support ") is Role.SUPPORT
    with pytest.raises(ValueError, match="admin, operator, support, auditor"):
        parse_role("root")
