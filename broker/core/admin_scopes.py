"""The admin API's OAuth scopes (issue 19): one ``admin:<permission>`` per ``core.operators.Permission``.

A person at the console holds the permissions of their roles; an automation client (a CI pipeline registering
apps) holds the permissions of the admin scopes its registration lists and its access token carries
(RFC 6749 §3.3, §4.4). Two permissions are never a client's, whatever its registration says: showing a
citizen's claim values and granting roles stay with people, who sign in afresh for them (``PEOPLE_ONLY``).
"""

from __future__ import annotations

from collections.abc import Iterable

from broker.core.operators import Permission

PREFIX = "admin:"
#: the permissions no client may hold (nor be registered for): a person, recently signed in, exercises them
PEOPLE_ONLY = frozenset({Permission.REVEAL_CLAIMS, Permission.MANAGE_OPERATORS})
#: the permissions an automation client may be registered for
CLIENT_PERMISSIONS = frozenset(Permission) - PEOPLE_ONLY


def admin_scope(permission: Permission) -> str:
    """``admin:view-audit`` for ``VIEW_AUDIT``."""
    return PREFIX + permission.value


#: every admin scope a client may be registered for, in the order of ``Permission``
CLIENT_SCOPES = tuple(admin_scope(p) for p in Permission if p in CLIENT_PERMISSIONS)


def is_admin_scope(scope: str) -> bool:
    """Whether ``scope`` is in the admin namespace at all (known or not)."""
    return scope.startswith(PREFIX)


def scope_permission(scope: str) -> Permission | None:
    """The permission an admin scope stands for; None for any other text (also ``admin:`` + unknown)."""
    if not is_admin_scope(scope):
        return None
    try:
        return Permission(scope[len(PREFIX):])
    except ValueError:
        return None


def client_permissions(scopes: Iterable[str]) -> frozenset[Permission]:
    """The permissions ``scopes`` give a client: its admin scopes, never a ``PEOPLE_ONLY`` one."""
    found = (scope_permission(scope) for scope in scopes)
    return frozenset(p for p in found if p is not None and p in CLIENT_PERMISSIONS)
