"""OpenID provider: grants, their tokens (hashed), dynamically registered clients.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oidc_grants",
        sa.Column("grant_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"],
            name="fk_oidc_grants_account_id_accounts", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("grant_id", name="pk_oidc_grants"),
    )
    op.create_index("ix_oidc_grants_account_id", "oidc_grants", ["account_id"])
    op.create_table(
        "oidc_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("grant_id", sa.String(64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["oidc_grants.grant_id"],
            name="fk_oidc_tokens_grant_id_oidc_grants", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name="pk_oidc_tokens"),
    )
    op.create_index("ix_oidc_tokens_grant_id", "oidc_tokens", ["grant_id"])
    op.create_index("ix_oidc_tokens_expires_at", "oidc_tokens", ["expires_at"])
    op.create_table(
        "oidc_clients",
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("registration_token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name="pk_oidc_clients"),
    )


def downgrade() -> None:
    op.drop_table("oidc_clients")
    op.drop_index("ix_oidc_tokens_expires_at", table_name="oidc_tokens")
    op.drop_index("ix_oidc_tokens_grant_id", table_name="oidc_tokens")
    op.drop_table("oidc_tokens")
    op.drop_index("ix_oidc_grants_account_id", table_name="oidc_grants")
    op.drop_table("oidc_grants")
