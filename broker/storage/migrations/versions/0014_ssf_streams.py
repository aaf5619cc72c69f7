"""The event streams apps configure at the broker's Shared Signals transmitter (issue 18: SSF 1.0 §8.1, push
delivery by RFC 8935), each owned by one registered OpenID client.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ssf_streams",
        sa.Column("stream_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("events_requested", sa.Text(), nullable=False),
        sa.Column("events_delivered", sa.Text(), nullable=False),
        sa.Column("endpoint_url", sa.Text(), nullable=False),
        sa.Column("authorization_header", sa.Text(), nullable=True),
        sa.Column("description", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("stream_id", name="pk_ssf_streams"),
    )
    op.create_index("ix_ssf_streams_client_id", "ssf_streams", ["client_id"])


def downgrade() -> None:
    op.drop_table("ssf_streams")
