"""Back-off on code entries (issue 17): each second-factor failure keeps the keyed hash of the client address (never
the address) so wrong answers can be counted per address too, and an entry can be recorded before its code is
checked (``in_flight``) so parallel entries count against each other. Rows written before keep no address.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-14
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("second_factor_failures") as batch:
        batch.add_column(sa.Column("address", sa.String(64), nullable=True))
        batch.add_column(sa.Column("in_flight", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index("ix_second_factor_failures_address_at", "second_factor_failures", ["address", "at"])


def downgrade() -> None:
    op.drop_index("ix_second_factor_failures_address_at", table_name="second_factor_failures")
    with op.batch_alter_table("second_factor_failures") as batch:
        batch.drop_column("in_flight")
        batch.drop_column("address")
