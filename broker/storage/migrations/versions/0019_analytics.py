"""Analytics aggregates beside the audit trail (issue 19; ``broker.storage.analytics_tables``, ``broker.analytics``):
daily counts, per-account facts, the days each account signed in, and the watermark of the last audit record rolled
up (0: nothing yet; the first ``broker analytics rollup`` reads the whole trail, in batches). The audit trail is not
touched.

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_watermark = sa.table("analytics_watermark", sa.column("id", sa.Integer()), sa.column("seq", sa.BigInteger()))


def upgrade() -> None:
    op.create_table(
        "analytics_watermark",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("rolled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name="ck_analytics_watermark_single_row"),
        sa.PrimaryKeyConstraint("id", name="pk_analytics_watermark"),
    )
    op.bulk_insert(_watermark, [{"id": 1, "seq": 0}])
    op.create_table(
        "analytics_daily",
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("upstream", sa.String(255), nullable=False),
        sa.Column("downstream", sa.String(1024), nullable=False),
        sa.Column("detail", sa.String(255), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("metric", "day", "upstream", "downstream", "detail", name="pk_analytics_daily"),
    )
    op.create_table(
        "analytics_accounts",
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_sign_in", sa.Date(), nullable=True),
        sa.Column("upstreams", sa.Integer(), nullable=False),
        sa.Column("apps", sa.Integer(), nullable=False),
        sa.Column("authenticators", sa.Integer(), nullable=False),
        sa.Column("second_factor", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_analytics_accounts"),
    )
    op.create_index("ix_analytics_accounts_last_sign_in", "analytics_accounts", ["last_sign_in"])
    op.create_table(
        "analytics_account_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("day", "account_id", name="pk_analytics_account_days"),
    )
    op.create_table(
        "analytics_account_upstreams",
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("upstream", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "upstream", name="pk_analytics_account_upstreams"),
    )
    op.create_table(
        "analytics_account_apps",
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("downstream", sa.String(1024), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "downstream", name="pk_analytics_account_apps"),
    )


def downgrade() -> None:
    for table in ("analytics_account_apps", "analytics_account_upstreams", "analytics_account_days",
                  "analytics_accounts", "analytics_daily", "analytics_watermark"):
        op.drop_table(table)
