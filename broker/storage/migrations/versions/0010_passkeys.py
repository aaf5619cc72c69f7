"""Passkeys (WebAuthn credentials) the broker enrols itself (issue 17); each is also an ``authenticators`` row.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "passkeys",
        sa.Column("authenticator_id", sa.String(36), nullable=False),
        sa.Column("credential_id", sa.LargeBinary(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("transports", sa.Text(), nullable=False),
        sa.Column("user_handle", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["authenticator_id"], ["authenticators.authenticator_id"],
            name="fk_passkeys_authenticator_id_authenticators", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("authenticator_id", name="pk_passkeys"),
    )
    op.create_index("ix_passkeys_credential_id", "passkeys", ["credential_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_passkeys_credential_id", table_name="passkeys")
    op.drop_table("passkeys")
