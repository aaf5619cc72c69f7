"""Operator roles in SQL (``broker.core.operators.OperatorGrants``; issue 19): table ``operator_roles``, one row per
(account, role). A grant is an insert whose primary key decides, so granting twice at once records one row on
PostgreSQL as on SQLite."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError

from broker.core.operators import OperatorGrant, Role
from broker.storage.console_tables import OperatorRoleRow
from broker.storage.db import reader_factory, rowcount, session_factory


class SqlOperatorGrants:
    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)
        self._reads = reader_factory(engine)  # no transaction: one round trip per read

    def grant(self, grant: OperatorGrant) -> bool:
        try:
            with self._sessions.begin(savepoint=True) as session:
                session.add(OperatorRoleRow(account_id=grant.account_id, role=grant.role.value,
                                            granted_by=grant.granted_by, granted_at=grant.granted_at))
        except IntegrityError:
            with self._reads() as session:  # held already, or the account does not exist
                if session.get(OperatorRoleRow, (grant.account_id, grant.role.value)) is not None:
                    return False
            raise
        return True

    def revoke(self, account_id: str, role: Role) -> bool:
        with self._sessions.begin() as session:
            result = session.execute(delete(OperatorRoleRow).where(OperatorRoleRow.account_id == account_id,
                                                                   OperatorRoleRow.role == role.value))
            return rowcount(result) > 0

    def roles_of(self, account_id: str) -> frozenset[Role]:
        with self._reads() as session:
            values = session.scalars(select(OperatorRoleRow.role).where(OperatorRoleRow.account_id == account_id))
            return frozenset(role for value in values if (role := _role(value)) is not None)

    def listing(self) -> Sequence[OperatorGrant]:
        query = select(OperatorRoleRow).order_by(OperatorRoleRow.account_id, OperatorRoleRow.role)
        with self._reads() as session:
            return [OperatorGrant(row.account_id, role, row.granted_by, row.granted_at)
                    for row in session.scalars(query) if (role := _role(row.role)) is not None]


def _role(value: str) -> Role | None:
    """A stored role this version knows; a role a newer version wrote (after a downgrade) grants nothing."""
    try:
        return Role(value)
    except ValueError:
        return None
