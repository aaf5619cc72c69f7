"""The admin API's scopes (``broker.core.admin_scopes``; issue 19): one per permission, and the two that stay with
people are never a client's."""

from __future__ import annotations

import pytest

from broker.core.admin_scopes import (
    CLIENT_PERMISSIONS,
    CLIENT_SCOPES,
    PEOPLE_ONLY,
    admin_scope,
    client_permissions,
    scope_permission,
)
from broker.core.operators import Permission


@pytest.mark.parametrize("permission", list(Permission))
def test_each_permission_has_its_scope_and_back(permission: Permission) -> None:
    assert scope_permission(admin_scope(permission)) is permission
    assert (admin_scope(permission) in CLIENT_SCOPES) is (permission not in PEOPLE_ONLY)


def test_revealing_claims_and_granting_roles_are_never_a_clients() -> None:
    assert {Permission.REVEAL_CLAIMS, Permission.MANAGE_OPERATORS} == PEOPLE_ONLY
    assert "admin:reveal-claims" not in CLIENT_SCOPES and "admin:manage-operators" not in CLIENT_SCOPES
    assert client_permissions(["admin:reveal-claims", "admin:manage-operators", "admin:view-audit"]) == {
        Permission.VIEW_AUDIT}
    assert set(Permission) == CLIENT_PERMISSIONS | PEOPLE_ONLY


@pytest.mark.parametrize("text", ["openid", "admin", "admin:", "admin:root", "ADMIN:view-audit", " admin:view-audit"])
def test_other_text_is_no_admin_scope(text: str) -> None:
    assert scope_permission(text) is None
    assert client_permissions([text]) == frozenset()
