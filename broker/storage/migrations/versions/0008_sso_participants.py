"""The apps each SSO session answered, server-side, so single logout reaches them all (issue 16).

Until now the participants lived only in the browser's session; ``broker.core.sessions.merged_participants``
still reads those of sessions started before this revision.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sso_participants",
        sa.Column("sid", sa.String(64), nullable=False),
        sa.Column("party_id", sa.String(1024), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(1024), nullable=False),
        sa.Column("name_id_format", sa.String(255), nullable=True),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sid"], ["sso_sessions.sid"], name="fk_sso_participants_sid_sso_sessions", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sid", "party_id", name="pk_sso_participants"),
    )


def downgrade() -> None:
    op.drop_table("sso_participants")
