"""A keyed index of each linked identity's verified e-mail address, for link offers.

Claims are sealed, so an address cannot be searched in SQL; ``email_index`` holds HMAC-SHA256 of the
lower-cased address under a key derived from the pairwise secret, only while the upstream asserts it as
verified (NULL otherwise).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("linked_identities") as batch:
        batch.add_column(sa.Column("email_index", sa.String(64), nullable=True))
        batch.create_index("ix_linked_identities_email_index", ["email_index"])


def downgrade() -> None:
    with op.batch_alter_table("linked_identities") as batch:
        batch.drop_index("ix_linked_identities_email_index")
        batch.drop_column("email_index")
