"""The SSO session registry (the citizen's active sessions; "sign out everywhere").

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sso_sessions",
        sa.Column("sid", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("upstream", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_agent", sa.String(200), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name="fk_sso_sessions_account_id_accounts", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sid", name="pk_sso_sessions"),
    )
    op.create_index("ix_sso_sessions_account_id", "sso_sessions", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_sso_sessions_account_id", table_name="sso_sessions")
    op.drop_table("sso_sessions")
