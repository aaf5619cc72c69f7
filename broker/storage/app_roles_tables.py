"""The tables of roles for apps (issue 19; ``broker.core.app_roles``): each app's roles, the accounts that hold
them, and the upstream groups that give them. Same declarative ``Base`` as ``broker.storage.tables``; the package
(``broker.storage``) imports this module, so the metadata migrations compare against has them too (revision 0021).

A role has a number of its own (``role_id``), so an assignment or a mapping never repeats the app's party id (up to
1024 characters) in its key; removing a role removes its assignments and mappings, removing an account its
assignments (``ON DELETE CASCADE``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, PrimaryKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from broker.storage.tables import Base, UTCDateTime

#: who made a change: an operator's account id, ``client <client_id>`` or ``cli <user>``
BY_LENGTH = 300


class AppRoleRow(Base):
    """One role of one app."""

    __tablename__ = "app_roles"
    __table_args__ = (UniqueConstraint("party_id", "name"),)

    role_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    party_id: Mapped[str] = mapped_column(String(1024), nullable=False)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    description: Mapped[str] = mapped_column(String(200), nullable=False)
    defined_by: Mapped[str] = mapped_column(String(BY_LENGTH), nullable=False)
    defined_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class AppRoleAssignmentRow(Base):
    """One account holding one role."""

    __tablename__ = "app_role_assignments"
    __table_args__ = (PrimaryKeyConstraint("role_id", "account_id"),
                      Index("ix_app_role_assignments_account_id", "account_id"))

    role_id: Mapped[int] = mapped_column(Integer, ForeignKey("app_roles.role_id", ondelete="CASCADE"),
                                         nullable=False)
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("accounts.account_id", ondelete="CASCADE"),
                                            nullable=False)
    granted_by: Mapped[str] = mapped_column(String(BY_LENGTH), nullable=False)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class AppRoleMappingRow(Base):
    """Whoever signs in through ``upstream`` with group ``group_value`` holds the role."""

    __tablename__ = "app_role_mappings"
    __table_args__ = (PrimaryKeyConstraint("role_id", "upstream", "group_value"),)

    role_id: Mapped[int] = mapped_column(Integer, ForeignKey("app_roles.role_id", ondelete="CASCADE"),
                                         nullable=False)
    upstream: Mapped[str] = mapped_column(String(256), nullable=False)
    group_value: Mapped[str] = mapped_column(String(256), nullable=False)
    mapped_by: Mapped[str] = mapped_column(String(BY_LENGTH), nullable=False)
    mapped_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
