"""Roles for apps in SQL (``broker.core.app_roles.AppRoleStore``; issue 19): tables ``app_roles``,
``app_role_assignments`` and ``app_role_mappings`` (``broker.storage.app_roles_tables``). An assignment or a
mapping is an insert whose primary key decides, so making one twice at once records one row on PostgreSQL as on
SQLite; ``roles_of`` reads only rows of the one app it is asked about."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broker.core.app_roles import AppRole, AppRoles, GroupMapping, RoleAssignment
from broker.storage.app_roles_tables import BY_LENGTH, AppRoleAssignmentRow, AppRoleMappingRow, AppRoleRow
from broker.storage.db import reader_factory, rowcount, session_factory


class SqlAppRoles:
    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)
        self._reads = reader_factory(engine)  # no transaction: one round trip per read

    def define(self, role: AppRole) -> bool:
        try:
            with self._sessions.begin(savepoint=True) as session:
                row = _role(session, role.party_id, role.name)
                if row is not None:
                    if row.description == role.description:
                        return False
                    row.description = role.description
                    return True
                session.add(AppRoleRow(party_id=role.party_id, name=role.name, description=role.description,
                                       defined_by=role.defined_by[:BY_LENGTH], defined_at=role.defined_at))
        except IntegrityError:  # defined meanwhile by another request
            return False
        return True

    def remove(self, party_id: str, name: str) -> bool:
        with self._sessions.begin() as session:
            row = _role(session, party_id, name)
            if row is None:
                return False
            # explicit, not only ON DELETE CASCADE: the same on every backend and connection setting
            session.execute(delete(AppRoleAssignmentRow).where(AppRoleAssignmentRow.role_id == row.role_id))
            session.execute(delete(AppRoleMappingRow).where(AppRoleMappingRow.role_id == row.role_id))
            session.delete(row)
        return True

    def assign(self, assignment: RoleAssignment) -> bool:
        return self._insert(assignment.party_id, assignment.role, lambda role_id: AppRoleAssignmentRow(
            role_id=role_id, account_id=assignment.account_id, granted_by=assignment.granted_by[:BY_LENGTH],
            granted_at=assignment.granted_at))

    def unassign(self, party_id: str, role: str, account_id: str) -> bool:
        with self._sessions.begin() as session:
            row = _role(session, party_id, role)
            return row is not None and rowcount(session.execute(delete(AppRoleAssignmentRow).where(
                AppRoleAssignmentRow.role_id == row.role_id, AppRoleAssignmentRow.account_id == account_id))) > 0

    def map_group(self, mapping: GroupMapping) -> bool:
        return self._insert(mapping.party_id, mapping.role, lambda role_id: AppRoleMappingRow(
            role_id=role_id, upstream=mapping.upstream, group_value=mapping.group,
            mapped_by=mapping.mapped_by[:BY_LENGTH], mapped_at=mapping.mapped_at))

    def unmap_group(self, party_id: str, role: str, upstream: str, group: str) -> bool:
        with self._sessions.begin() as session:
            row = _role(session, party_id, role)
            return row is not None and rowcount(session.execute(delete(AppRoleMappingRow).where(
                AppRoleMappingRow.role_id == row.role_id, AppRoleMappingRow.upstream == upstream,
                AppRoleMappingRow.group_value == group))) > 0

    def of_app(self, party_id: str) -> AppRoles:
        with self._reads() as session:
            roles = session.scalars(select(AppRoleRow).where(AppRoleRow.party_id == party_id)
                                    .order_by(AppRoleRow.name)).all()
            names = {r.role_id: r.name for r in roles}
            assigned = session.scalars(select(AppRoleAssignmentRow).where(
                AppRoleAssignmentRow.role_id.in_(names))).all() if names else []
            mapped = session.scalars(select(AppRoleMappingRow).where(
                AppRoleMappingRow.role_id.in_(names))).all() if names else []
        return AppRoles(
            party_id,
            tuple(AppRole(party_id, r.name, r.description, r.defined_by, r.defined_at) for r in roles),
            tuple(sorted((RoleAssignment(party_id, names[a.role_id], a.account_id, a.granted_by, a.granted_at)
                          for a in assigned), key=lambda a: (a.role, a.account_id))),
            tuple(sorted((GroupMapping(party_id, names[m.role_id], m.upstream, m.group_value, m.mapped_by,
                                       m.mapped_at) for m in mapped), key=lambda m: (m.role, m.upstream, m.group))),
        )

    def roles_of(self, party_id: str, account_id: str, upstream: str, groups: frozenset[str]) -> frozenset[str]:
        assigned = (select(AppRoleRow.name)
                    .join(AppRoleAssignmentRow, AppRoleAssignmentRow.role_id == AppRoleRow.role_id)
                    .where(AppRoleRow.party_id == party_id, AppRoleAssignmentRow.account_id == account_id))
        with self._reads() as session:
            names = set(session.scalars(assigned))
            if groups:
                mapped = (select(AppRoleRow.name)
                          .join(AppRoleMappingRow, AppRoleMappingRow.role_id == AppRoleRow.role_id)
                          .where(AppRoleRow.party_id == party_id, AppRoleMappingRow.upstream == upstream,
                                 AppRoleMappingRow.group_value.in_(sorted(groups))))
                names.update(session.scalars(mapped))
        return frozenset(names)

    def _insert(self, party_id: str, role: str,
                make: Callable[[int], AppRoleAssignmentRow | AppRoleMappingRow]) -> bool:
        """Insert the row ``make`` builds for the role; False when it exists, ``LookupError`` without the role
        (or, for an assignment, without the account)."""
        with self._reads() as session:
            row = _role(session, party_id, role)
        if row is None:
            raise LookupError(f"app {party_id[:200]!r} has no role {role[:80]!r}")
        new = make(row.role_id)
        key = _key(new)
        try:
            with self._sessions.begin(savepoint=True) as session:
                if session.get(type(new), key) is not None:
                    return False
                session.add(new)
        except IntegrityError:  # made meanwhile by another request, or the role or account is gone
            with self._reads() as session:
                if session.get(type(new), key) is not None:
                    return False
            raise LookupError("the role or the account does not exist") from None
        return True


def _key(row: AppRoleAssignmentRow | AppRoleMappingRow) -> tuple[object, ...]:
    if isinstance(row, AppRoleAssignmentRow):
        return (row.role_id, row.account_id)
    return (row.role_id, row.upstream, row.group_value)


def _role(session: Session, party_id: str, name: str) -> AppRoleRow | None:
    return session.scalars(select(AppRoleRow).where(AppRoleRow.party_id == party_id,
                                                    AppRoleRow.name == name)).first()
