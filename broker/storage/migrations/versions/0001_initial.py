"""Accounts, linked identities, pending login state.

Revision ID: 0001
Revises:
Create Date: 2024-06-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_accounts"),
    )
    op.create_table(
        "linked_identities",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("issuer", sa.String(1024), nullable=False),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("upstream", sa.String(255), nullable=False),
        sa.Column("first_used", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_acr", sa.String(1024), nullable=True),
        sa.Column("last_claims", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"],
            name="fk_linked_identities_account_id_accounts", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_linked_identities"),
        sa.UniqueConstraint("issuer", "subject", name="uq_linked_identities_issuer_subject"),
    )
    op.create_index("ix_linked_identities_account_id", "linked_identities", ["account_id"])
    op.create_table(
        "pending_states",
        sa.Column("handle", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("handle", name="pk_pending_states"),
    )
    op.create_index("ix_pending_states_expires_at", "pending_states", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_pending_states_expires_at", table_name="pending_states")
    op.drop_table("pending_states")
    op.drop_index("ix_linked_identities_account_id", table_name="linked_identities")
    op.drop_table("linked_identities")
    op.drop_table("accounts")
