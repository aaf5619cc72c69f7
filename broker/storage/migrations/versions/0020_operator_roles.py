"""Operator roles (issue 19: the operator console and the admin API): which accounts may run the broker; and the
audit trail indexed by support reference, for the console's look-up.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "operator_roles",
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("granted_by", sa.String(64), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"], ondelete="CASCADE",
                                name="fk_operator_roles_account_id_accounts"),
        sa.PrimaryKeyConstraint("account_id", "role", name="pk_operator_roles"),
    )
    # the console finds the records of a support reference a citizen reads out (``AuditTrail.events``)
    op.create_index("ix_audit_events_reference", "audit_events", ["reference"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_reference", table_name="audit_events")
    op.drop_table("operator_roles")
