"""Second factors the broker enrols itself (issue 17): authenticator apps and recovery codes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "authenticators",
        sa.Column("authenticator_id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("secret_sealed", sa.Text(), nullable=True),
        sa.Column("last_step", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name="fk_authenticators_account_id_accounts", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("authenticator_id", name="pk_authenticators"),
    )
    op.create_index("ix_authenticators_account_id", "authenticators", ["account_id"])
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("authenticator_id", sa.String(36), nullable=False),
        sa.Column("code_hash", sa.String(97), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["authenticator_id"], ["authenticators.authenticator_id"],
            name="fk_recovery_codes_authenticator_id_authenticators", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_recovery_codes"),
    )
    op.create_index("ix_recovery_codes_authenticator_id", "recovery_codes", ["authenticator_id"])


def downgrade() -> None:
    op.drop_index("ix_recovery_codes_authenticator_id", table_name="recovery_codes")
    op.drop_table("recovery_codes")
    op.drop_index("ix_authenticators_account_id", table_name="authenticators")
    op.drop_table("authenticators")
