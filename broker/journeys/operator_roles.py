"""Granting and revoking operator roles from the admin API (issue 19; ``broker operators grant|revoke`` is the
command line's way, with ``cli`` as the granting operator).

Only a person may do it: an operator holding ``manage-operators`` (``admin``) who signed in within ``[console]
reauth_minutes``; the web layer checks both (``core.admin_scopes.PEOPLE_ONLY`` keeps it from every client). Here:

- the account must exist (``UnknownAccount``);
- the last ``admin`` role cannot be revoked (``LastAdmin``): nobody could grant one again but the command line;
- each change is an audit record of the account whose roles changed, ``OPERATOR_ROLE_GRANTED`` or
  ``OPERATOR_ROLE_REVOKED``, whose reason names the role, who did it and the roles before and after; the grant
  itself keeps the granting operator's account id (``OperatorGrant.granted_by``). Nothing changed, nothing written.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.core.audit import AuditKind
from broker.core.operators import OperatorGrant, Role
from broker.journeys.console import grants
from broker.journeys.context import Journeys


class UnknownAccount(LookupError):
    """No account has that id."""


class LastAdmin(ValueError):
    """Revoking this role would leave the broker without an ``admin``."""


@dataclass(frozen=True)
class RoleChange:
    """What a grant or revocation did: the account's roles before and after (equal when nothing changed)."""

    account_id: str
    role: Role
    before: frozenset[Role]
    after: frozenset[Role]

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _names(roles: frozenset[Role]) -> str:
    return ", ".join(sorted(r.value for r in roles)) or "none"


def grant(j: Journeys, account_id: str, role: Role, by_account: str) -> RoleChange:
    """Give ``account_id`` the ``role``, granted by the operator ``by_account``."""
    store = grants(j)
    if not account_id or j.accounts.get(account_id) is None:
        raise UnknownAccount(account_id)
    before = store.roles_of(account_id)
    if role in before or not store.grant(OperatorGrant(account_id, role, by_account, j.now())):
        return RoleChange(account_id, role, before, before)
    after = store.roles_of(account_id)
    j.audit(AuditKind.OPERATOR_ROLE_GRANTED, account_id=account_id,
            reason=f"{role.value} granted by operator {by_account}; roles {_names(before)} -> {_names(after)}")
    return RoleChange(account_id, role, before, after)


def revoke(j: Journeys, account_id: str, role: Role, by_account: str) -> RoleChange:
    """Take ``role`` from ``account_id``, by the operator ``by_account``; ``LastAdmin`` for the last admin."""
    store = grants(j)
    before = store.roles_of(account_id) if account_id else frozenset()
    if role not in before:
        if j.accounts.get(account_id) is None:
            raise UnknownAccount(account_id)
        return RoleChange(account_id, role, before, before)
    if role is Role.ADMIN and not any(g.role is Role.ADMIN and g.account_id != account_id for g in store.listing()):
        raise LastAdmin(account_id)
    if not store.revoke(account_id, role):
        return RoleChange(account_id, role, before, before)  # revoked meanwhile, by another request
    after = store.roles_of(account_id)
    j.audit(AuditKind.OPERATOR_ROLE_REVOKED, account_id=account_id,
            reason=f"{role.value} revoked by operator {by_account}; roles {_names(before)} -> {_names(after)}")
    return RoleChange(account_id, role, before, after)
