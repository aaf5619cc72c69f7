"""The tables of the operator console (issue 19): which accounts hold which operator role. Same declarative
``Base`` as ``broker.storage.tables``; the package (``broker.storage``) imports this module, so the metadata
migrations compare against has them too."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from broker.storage.tables import Base, UTCDateTime


class OperatorRoleRow(Base):
    """One role (``broker.core.operators.Role``) held by one account; removed with the account."""

    __tablename__ = "operator_roles"
    __table_args__ = (PrimaryKeyConstraint("account_id", "role", name="pk_operator_roles"),)

    account_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("accounts.account_id", ondelete="CASCADE"), nullable=False,
    )
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    #: the granting operator's account id, or ``cli``
    granted_by: Mapped[str] = mapped_column(String(64), nullable=False)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
