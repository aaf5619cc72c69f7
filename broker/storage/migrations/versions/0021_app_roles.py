"""Roles for apps (issue 19; ``broker.storage.app_roles_tables``): each app's roles, the accounts that hold them,
and the upstream groups that give them.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "app_roles",
        sa.Column("role_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("party_id", sa.String(1024), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("defined_by", sa.String(300), nullable=False),
        sa.Column("defined_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("role_id", name="pk_app_roles"),
        sa.UniqueConstraint("party_id", "name", name="uq_app_roles_party_id_name"),
    )
    op.create_table(
        "app_role_assignments",
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("granted_by", sa.String(300), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["role_id"], ["app_roles.role_id"], ondelete="CASCADE",
                                name="fk_app_role_assignments_role_id_app_roles"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"], ondelete="CASCADE",
                                name="fk_app_role_assignments_account_id_accounts"),
        sa.PrimaryKeyConstraint("role_id", "account_id", name="pk_app_role_assignments"),
    )
    op.create_index("ix_app_role_assignments_account_id", "app_role_assignments", ["account_id"])
    op.create_table(
        "app_role_mappings",
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.Column("upstream", sa.String(256), nullable=False),
        sa.Column("group_value", sa.String(256), nullable=False),
        sa.Column("mapped_by", sa.String(300), nullable=False),
        sa.Column("mapped_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["role_id"], ["app_roles.role_id"], ondelete="CASCADE",
                                name="fk_app_role_mappings_role_id_app_roles"),
        sa.PrimaryKeyConstraint("role_id", "upstream", "group_value", name="pk_app_role_mappings"),
    )


def downgrade() -> None:
    op.drop_table("app_role_mappings")
    op.drop_index("ix_app_role_assignments_account_id", table_name="app_role_assignments")
    op.drop_table("app_role_assignments")
    op.drop_table("app_roles")
