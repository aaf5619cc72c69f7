"""Roles for apps (issue 19): the operator's roles per app, who holds them, and which upstream groups give them.

An operator defines roles for one app (``AppRole``: the app's party id and a role name), assigns them to
citizens' accounts (``RoleAssignment``), or maps them from the groups an upstream says the person is in
(``GroupMapping``: upstream name and group value, e.g. a Microsoft Entra group object id or a SAML ``isMemberOf``
value; ``core.claims`` ``groups``). At answer time an app's ``roles`` claim is the roles of *that app* assigned to
the account, with those mapped from the groups of the identity used for this sign-in (``roles_for``); roles of
another app are never looked at. The claim then passes ``release_claims``, the release policy and consent like
any other (``core.release``, ``core.consent``).

Role names are the operator's, checked here (``role_problem``) so that every protocol can carry them unchanged:
letters, digits and ``. _ : -``, at most 64 characters, starting with a letter or digit (no space, no control or
bidirectional character).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from broker.core.claims import MAX_VALUE_LENGTH, ClaimValue
from broker.core.profile import IdentityClaims

ROLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
MAX_DESCRIPTION = 200
#: the claim the roles travel as (``core.claims``)
ROLES_CLAIM = "roles"


@dataclass(frozen=True)
class AppRole:
    """One role of one app; ``defined_by`` is the operator's account id, ``client <id>`` or ``cli ...``."""

    party_id: str
    name: str
    description: str
    defined_by: str
    defined_at: datetime


@dataclass(frozen=True)
class RoleAssignment:
    """``account_id`` holds ``role`` in app ``party_id``."""

    party_id: str
    role: str
    account_id: str
    granted_by: str
    granted_at: datetime


@dataclass(frozen=True)
class GroupMapping:
    """Whoever signs in through upstream ``upstream`` with group ``group`` holds ``role`` in app ``party_id``."""

    party_id: str
    role: str
    upstream: str
    group: str
    mapped_by: str
    mapped_at: datetime


@dataclass(frozen=True)
class AppRoles:
    """Everything about one app's roles, for the console, the admin API and ``broker roles list``."""

    party_id: str
    roles: tuple[AppRole, ...]
    assignments: tuple[RoleAssignment, ...]
    mappings: tuple[GroupMapping, ...]

    def as_json(self) -> dict[str, Any]:
        """As ``broker roles list --json`` prints it and the admin API answers it."""
        return {
            "party_id": self.party_id,
            "roles": [{"name": r.name, "description": r.description, "defined_by": r.defined_by,
                       "defined_at": r.defined_at.isoformat()} for r in self.roles],
            "assignments": [{"role": a.role, "account_id": a.account_id, "granted_by": a.granted_by,
                             "granted_at": a.granted_at.isoformat()} for a in self.assignments],
            "mappings": [{"role": m.role, "upstream": m.upstream, "group": m.group, "mapped_by": m.mapped_by,
                          "mapped_at": m.mapped_at.isoformat()} for m in self.mappings],
        }


class AppRoleStore(Protocol):
    """The roles of apps (``broker.storage.app_roles``). Every change answers whether anything changed."""

    def define(self, role: AppRole) -> bool:
        """Add the role, or change its description; False when it existed with that description."""
        ...

    def remove(self, party_id: str, name: str) -> bool:
        """Remove the role with its assignments and mappings; False when there was no such role."""
        ...

    def assign(self, assignment: RoleAssignment) -> bool:
        """False when the account held the role already. ``LookupError`` when the role is not defined."""
        ...

    def unassign(self, party_id: str, role: str, account_id: str) -> bool: ...

    def map_group(self, mapping: GroupMapping) -> bool:
        """False when the mapping existed. ``LookupError`` when the role is not defined."""
        ...

    def unmap_group(self, party_id: str, role: str, upstream: str, group: str) -> bool: ...

    def of_app(self, party_id: str) -> AppRoles:
        """The app's roles, assignments and mappings, each sorted."""
        ...

    def roles_of(self, party_id: str, account_id: str, upstream: str, groups: frozenset[str]) -> frozenset[str]:
        """The roles in app ``party_id`` assigned to ``account_id`` or mapped from one of ``groups`` of
        ``upstream``; no other app's."""
        ...


def role_problem(name: str) -> str | None:
    """Why ``name`` cannot be a role name, or None."""
    if not ROLE_NAME.fullmatch(name):
        return (f"role name {name[:80]!r} must be 1-64 letters, digits or . _ : - (starting with a letter or "
                "digit)")
    return None


def description_problem(description: str) -> str | None:
    if len(description) > MAX_DESCRIPTION or any(not c.isprintable() for c in description):
        return f"the description must be at most {MAX_DESCRIPTION} printable characters"
    return None


def group_problem(upstream: str, group: str) -> str | None:
    """Why (``upstream``, ``group``) cannot be mapped: both needed, printable, and a group no longer than the
    broker keeps (``core.claims.MAX_VALUE_LENGTH``), or it could never match."""
    if not upstream.strip() or len(upstream) > 256 or not upstream.isprintable():
        return "the upstream name must be 1-256 printable characters"
    if not group.strip() or group != group.strip() or len(group) > MAX_VALUE_LENGTH or not group.isprintable():
        return f"the group must be 1-{MAX_VALUE_LENGTH} printable characters without leading or trailing spaces"
    return None


def groups_of(identities: Sequence[IdentityClaims], upstream: str) -> frozenset[str]:
    """The groups of the identity used for this sign-in: the account's identity at ``upstream`` (the most
    recently used one, should the account hold several there). Empty when it asserted none."""
    used = [i for i in identities if i.identity.upstream == upstream]
    if not used:
        return frozenset()
    latest = max(used, key=lambda i: (i.identity.last_used, i.identity.issuer, i.identity.subject))
    groups = latest.claims.get("groups")
    return frozenset(groups) if isinstance(groups, tuple) else frozenset()


def roles_for(store: AppRoleStore, party_id: str, account_id: str, upstream: str,
              identities: Sequence[IdentityClaims]) -> tuple[str, ...]:
    """The ``roles`` claim for app ``party_id``: assigned or mapped from this sign-in's groups, sorted."""
    return tuple(sorted(store.roles_of(party_id, account_id, upstream, groups_of(identities, upstream))))


def with_roles(profile: Mapping[str, ClaimValue], roles: tuple[str, ...]) -> dict[str, ClaimValue]:
    """``profile`` with the app's ``roles`` (none: no ``roles`` claim at all, never an empty list)."""
    merged = {name: value for name, value in profile.items() if name != ROLES_CLAIM}
    if roles:
        merged[ROLES_CLAIM] = roles
    return merged
