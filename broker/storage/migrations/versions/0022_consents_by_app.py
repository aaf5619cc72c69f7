"""The consents indexed by app, for the help desk's look-up of a citizen by the id an app reported (issue 19).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # equality only: a hash index on PostgreSQL takes an app id of any length (``ConsentRow``); SQLite's is a btree
    op.create_index("ix_consents_party_id", "consents", ["party_id"], postgresql_using="hash")


def downgrade() -> None:
    op.drop_index("ix_consents_party_id", table_name="consents")
