"""Roles for apps (issue 19): the operator's changes, from ``broker roles``, the console and the admin API alike,
and the ``roles`` claim each answer carries (``broker.core.app_roles``).

Changes: a role is defined (or its description changed) for a registered app, removed with its assignments and
mappings, assigned to an existing account or taken back, mapped from an upstream group or unmapped. Each change is
one audit record ``APP_ROLES_CHANGED`` naming the app (``downstream``), the account whose roles changed when there
is one, and in its reason who did it and the state before and after; nothing changed, nothing written.

Release (``with_roles``): when this login may release ``roles`` (asked for, within ``release_claims`` and the
release policy: ``LoginResult.releasable``), the result gets that app's roles for the account and for the groups
of the identity used for this sign-in; consent then narrows the release like any claim's (``journeys.consent``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from broker.core.app_roles import (
    ROLES_CLAIM,
    AppRole,
    AppRoles,
    AppRoleStore,
    GroupMapping,
    RoleAssignment,
    description_problem,
    group_problem,
    role_problem,
    roles_for,
)
from broker.core.app_roles import (
    with_roles as profile_with_roles,
)
from broker.core.audit import AuditKind
from broker.core.model import LoginResult, Protocol
from broker.journeys.context import Journeys

MAX_REASON = 1000


class NotWired(RuntimeError):
    """This broker keeps no roles for apps (no store wired)."""


class UnknownApp(LookupError):
    """No registered app has that party id."""


class UnknownRole(LookupError):
    """The app has no role of that name."""


class UnknownAccount(LookupError):
    """No account has that id."""


class InvalidRole(ValueError):
    """A role name, description, upstream or group that cannot be stored."""


@dataclass(frozen=True)
class RolesChange:
    """What one change did: ``before`` and ``after`` are the role names of the app (define, remove), of the
    account in the app (assign, unassign), or the groups mapped to the role (map, unmap)."""

    party_id: str
    action: str
    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.before != self.after


def with_roles(j: Journeys, result: LoginResult) -> LoginResult:
    """``result`` with its app's ``roles`` among the released claims, when it may release them."""
    if j.app_roles is None or result.releasable is None or ROLES_CLAIM not in result.releasable:
        return result
    login = result.request
    identities = result.identities  # as the login read them for its release (issue 21: read once per login)
    if identities is None:
        identities = tuple(j.accounts.identity_claims(result.account.account_id))
    roles = roles_for(j.app_roles, login.downstream, result.account.account_id, result.upstream, identities)
    return replace(result, released=profile_with_roles(result.released, roles))


def store(j: Journeys) -> AppRoleStore:
    if j.app_roles is None:
        raise NotWired("roles for apps are not wired")
    return j.app_roles


def listing(j: Journeys, party_id: str) -> AppRoles:
    return store(j).of_app(party_id)


def define(j: Journeys, by: str, party_id: str, name: str, description: str = "") -> RolesChange:
    """Define role ``name`` of the registered app ``party_id`` (or change its description)."""
    roles = store(j)
    _check(role_problem(name), description_problem(description))
    party = j.registry.downstream(party_id)
    if party is None or party.protocol is Protocol.PORTAL:
        raise UnknownApp(party_id)
    before = _names(roles, party_id)
    if not roles.define(AppRole(party_id, name, description, by, j.now())):
        return RolesChange(party_id, "define", before, before)
    after = _names(roles, party_id)
    verb = "defined" if after != before else "described"
    _audit(j, party_id, None, f"role {name} {verb} by {by}; roles {_text(before)} -> {_text(after)}")
    return RolesChange(party_id, "define", before, after)


def remove(j: Journeys, by: str, party_id: str, name: str) -> RolesChange:
    """Remove the role with its assignments and mappings (an app no longer registered too)."""
    roles = store(j)
    before = _names(roles, party_id)
    if name not in before:
        raise UnknownRole(name)
    if not roles.remove(party_id, name):
        return RolesChange(party_id, "remove", before, before)
    after = _names(roles, party_id)
    _audit(j, party_id, None, f"role {name} removed by {by}; roles {_text(before)} -> {_text(after)}")
    return RolesChange(party_id, "remove", before, after)


def assign(j: Journeys, by: str, party_id: str, name: str, account_id: str) -> RolesChange:
    """Give ``account_id`` the app's role ``name``."""
    roles = store(j)
    if not account_id or len(account_id) > 64 or j.accounts.get(account_id) is None:
        raise UnknownAccount(account_id[:64])
    before = _held(roles, party_id, account_id)
    try:
        made = roles.assign(RoleAssignment(party_id, name, account_id, by, j.now()))
    except LookupError:
        raise UnknownRole(name) from None
    if not made:
        return RolesChange(party_id, "assign", before, before)
    after = _held(roles, party_id, account_id)
    _audit(j, party_id, account_id, f"role {name} assigned by {by}; roles {_text(before)} -> {_text(after)}")
    return RolesChange(party_id, "assign", before, after)


def unassign(j: Journeys, by: str, party_id: str, name: str, account_id: str) -> RolesChange:
    roles = store(j)
    before = _held(roles, party_id, account_id)
    if name not in before or not roles.unassign(party_id, name, account_id):
        return RolesChange(party_id, "unassign", before, before)
    after = _held(roles, party_id, account_id)
    _audit(j, party_id, account_id, f"role {name} unassigned by {by}; roles {_text(before)} -> {_text(after)}")
    return RolesChange(party_id, "unassign", before, after)


def map_group(j: Journeys, by: str, party_id: str, name: str, upstream: str, group: str) -> RolesChange:
    """Give role ``name`` to whoever signs in through ``upstream`` with group ``group``."""
    roles = store(j)
    _check(group_problem(upstream, group))
    before = _mapped(roles, party_id, name)
    try:
        made = roles.map_group(GroupMapping(party_id, name, upstream, group, by, j.now()))
    except LookupError:
        raise UnknownRole(name) from None
    if not made:
        return RolesChange(party_id, "map", before, before)
    after = _mapped(roles, party_id, name)
    _audit(j, party_id, None, f"role {name} mapped from group {group!r} of {upstream} by {by}; "
                              f"groups {_text(before)} -> {_text(after)}")
    return RolesChange(party_id, "map", before, after)


def unmap_group(j: Journeys, by: str, party_id: str, name: str, upstream: str, group: str) -> RolesChange:
    roles = store(j)
    before = _mapped(roles, party_id, name)
    if not roles.unmap_group(party_id, name, upstream, group):
        return RolesChange(party_id, "unmap", before, before)
    after = _mapped(roles, party_id, name)
    _audit(j, party_id, None, f"role {name} unmapped from group {group!r} of {upstream} by {by}; "
                              f"groups {_text(before)} -> {_text(after)}")
    return RolesChange(party_id, "unmap", before, after)


def _check(*problems: str | None) -> None:
    found = [p for p in problems if p]
    if found:
        raise InvalidRole("; ".join(found))


def _names(roles: AppRoleStore, party_id: str) -> tuple[str, ...]:
    return tuple(r.name for r in roles.of_app(party_id).roles)


def _held(roles: AppRoleStore, party_id: str, account_id: str) -> tuple[str, ...]:
    return tuple(a.role for a in roles.of_app(party_id).assignments if a.account_id == account_id)


def _mapped(roles: AppRoleStore, party_id: str, name: str) -> tuple[str, ...]:
    return tuple(f"{m.upstream}:{m.group}" for m in roles.of_app(party_id).mappings if m.role == name)


def _text(names: Iterable[str]) -> str:
    return "[" + ", ".join(names) + "]"


def _audit(j: Journeys, party_id: str, account_id: str | None, reason: str) -> None:
    j.audit(AuditKind.APP_ROLES_CHANGED, account_id=account_id, downstream=party_id[:1024],
            reason=reason[:MAX_REASON])
