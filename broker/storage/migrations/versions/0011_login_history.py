"""The login history behind risk-based challenges (issue 17): completed logins as keyed hashes (device, network
prefix, address; never a raw address) and wrong second-factor answers, both deleted after the retention.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("network", sa.String(64), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"],
            name="fk_login_history_account_id_accounts", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_login_history"),
    )
    op.create_index("ix_login_history_account_id_at", "login_history", ["account_id", "at"])
    op.create_index("ix_login_history_account_id_device", "login_history", ["account_id", "device"])
    op.create_index("ix_login_history_account_id_network", "login_history", ["account_id", "network"])
    op.create_index("ix_login_history_address_at", "login_history", ["address", "at"])
    op.create_index("ix_login_history_at", "login_history", ["at"])
    op.create_table(
        "second_factor_failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"],
            name="fk_second_factor_failures_account_id_accounts", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_second_factor_failures"),
    )
    op.create_index("ix_second_factor_failures_account_id_at", "second_factor_failures", ["account_id", "at"])
    op.create_index("ix_second_factor_failures_at", "second_factor_failures", ["at"])


def downgrade() -> None:
    op.drop_table("second_factor_failures")
    op.drop_table("login_history")
