"""Who may run the broker, and what each may do (issue 19: the operator console and the admin API).

Operators are citizens' accounts like any other (they sign in through the broker itself, at the console's
assurance level) that hold one or more ``Role``. A role is a fixed set of ``Permission``; every console page and
admin API call names the one permission it needs (``allowed``), so what a role may *not* do is as explicit as what
it may. The roles are the issue's:

- ``admin``: everything, including granting roles;
- ``operator``: apps, upstreams, federations, signing keys; reads the audit trail of what it changed;
- ``support``: looks citizens up and sees their sign-in methods, sessions, consents and failures, but no claim
  value (``REVEAL_CLAIMS`` is a separate, audited step only ``admin`` holds);
- ``auditor``: reads the audit trail and verifies its chain; changes nothing.

A grant is data (``OperatorGrants``), made by ``broker operators grant`` or by the console (``admin``), and audited
either way with who granted it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from broker.core.assurance import REFEDS_MFA
from broker.core.model import DownstreamParty
from broker.core.model import Protocol as WireProtocol
from broker.core.texts import N_

#: the built-in party of the console's sign-in (``console_party``): no app can name it
CONSOLE_PARTY_ID = "broker-console"


class Role(StrEnum):
    """The stored values: never rename one."""

    ADMIN = "admin"
    OPERATOR = "operator"
    SUPPORT = "support"
    AUDITOR = "auditor"


class Permission(StrEnum):
    VIEW_PARTIES = "view-parties"  # apps, upstreams, federations and their registrations
    MANAGE_PARTIES = "manage-parties"  # register, change, disable and remove them
    MANAGE_KEYS = "manage-keys"  # signing-key rotation steps
    LOOK_UP_CITIZENS = "look-up-citizens"  # find a citizen; methods, sessions, consents, failures (no claims)
    REVEAL_CLAIMS = "reveal-claims"  # see a citizen's claim values (audited each time)
    MANAGE_CITIZENS = "manage-citizens"  # disable or enable an account, end its sessions
    VIEW_AUDIT = "view-audit"  # the audit trail and its verification
    VIEW_ANALYTICS = "view-analytics"  # sign-in figures and charts
    MANAGE_OPERATORS = "manage-operators"  # grant and revoke roles


#: what each role holds; ``admin`` holds every permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: frozenset({Permission.VIEW_PARTIES, Permission.MANAGE_PARTIES, Permission.MANAGE_KEYS,
                              Permission.VIEW_AUDIT, Permission.VIEW_ANALYTICS}),
    Role.SUPPORT: frozenset({Permission.LOOK_UP_CITIZENS, Permission.VIEW_PARTIES}),
    Role.AUDITOR: frozenset({Permission.VIEW_AUDIT, Permission.VIEW_ANALYTICS, Permission.VIEW_PARTIES}),
}


def permissions_of(roles: Iterable[Role]) -> frozenset[Permission]:
    """Every permission any of ``roles`` holds."""
    held: set[Permission] = set()
    for role in roles:
        held |= ROLE_PERMISSIONS[role]
    return frozenset(held)


def allowed(roles: Iterable[Role], permission: Permission) -> bool:
    return permission in permissions_of(roles)


def parse_role(text: str) -> Role:
    """``text`` as a role; ``ValueError`` naming the roles that exist."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        raise ValueError(f"no role {text!r}: the roles are {', '.join(r.value for r in Role)}") from None


@dataclass(frozen=True)
class OperatorGrant:
    """One role held by one account; ``granted_by`` is the operator's account id, or ``cli`` for the command line."""

    account_id: str
    role: Role
    granted_by: str
    granted_at: datetime


class OperatorGrants(Protocol):
    """The roles accounts hold (``broker.storage.operators``)."""

    def grant(self, grant: OperatorGrant) -> bool:
        """Record ``grant``; False when the account already held that role (nothing changes)."""
        ...

    def revoke(self, account_id: str, role: Role) -> bool:
        """False when the account did not hold it."""
        ...

    def roles_of(self, account_id: str) -> frozenset[Role]:
        ...

    def listing(self) -> Sequence[OperatorGrant]:
        """Every grant, by account then role."""
        ...


@dataclass(frozen=True)
class RoleMapping:
    """``role`` for whoever signs in to the console through ``upstream`` as a member of ``group`` (a value of the
    upstream's ``groups`` claim, ``core.claims``: an Entra group object id, an LDAP group DN, ...)."""

    role: Role
    upstream: str
    group: str


def mapped_roles(mappings: Iterable[RoleMapping], upstream: str, groups: Iterable[str]) -> frozenset[Role]:
    """The roles ``mappings`` give a sign-in through ``upstream`` by a member of ``groups`` (exact matches)."""
    member = frozenset(groups)
    return frozenset(m.role for m in mappings if m.upstream == upstream and m.group in member)


@dataclass(frozen=True)
class ConsolePolicy:
    """The operator's ``[console]`` settings (``broker.config.console``)."""

    enabled: bool = True
    #: where staff may sign in; empty: every registered upstream
    upstreams: tuple[str, ...] = ()
    #: the level a console sign-in must reach (stepped up with the broker's second factor when the upstream's is
    #: lower)
    required_acr: str = REFEDS_MFA
    #: a console session ends after ``idle`` without a request, and ``lifetime`` after its sign-in
    idle: timedelta = field(default=timedelta(minutes=15))
    lifetime: timedelta = field(default=timedelta(hours=8))
    #: a dangerous action needs a sign-in at most this old, else the operator signs in again
    reauth: timedelta = field(default=timedelta(minutes=5))
    #: roles given by the upstream's groups at the console sign-in, beside those granted (``broker operators``)
    role_mappings: tuple[RoleMapping, ...] = ()


def console_party(policy: ConsolePolicy) -> DownstreamParty:
    """The console's sign-in as a login's party: the allowed upstreams and required level come from the policy, so
    the ordinary login pipeline (discovery, step-up) enforces them; it receives no claims."""
    return DownstreamParty(CONSOLE_PARTY_ID, WireProtocol.PORTAL, N_("Operator console"), frozenset(),
                           allowed_upstreams=policy.upstreams, required_acr=policy.required_acr)
