"""The outbox of messages owed to other parties (issue 18): back-channel logout tokens and Security Event Tokens,
queued in the database by the web workers and sent by the delivery worker (``broker worker``), with retries, a
dead-letter state and ``(receiver, jti)`` unique.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("receiver", sa.String(255), nullable=False),
        sa.Column("jti", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_messages"),
        sa.UniqueConstraint("receiver", "jti", name="uq_outbox_messages_receiver_jti"),
    )
    op.create_index("ix_outbox_messages_state_next_attempt_at", "outbox_messages", ["state", "next_attempt_at"])
    op.create_index("ix_outbox_messages_state_created_at", "outbox_messages", ["state", "created_at"])
    op.create_index("ix_outbox_messages_delivered_at", "outbox_messages", ["delivered_at"])


def downgrade() -> None:
    op.drop_table("outbox_messages")
