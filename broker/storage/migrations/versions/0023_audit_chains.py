"""Audit chains (issue 21): the audit trail becomes ``AUDIT_CHAINS`` (8) parallel hash chains, so appends do not
all wait on one row lock (``broker.storage.audit``).

``audit_chain_head`` gets a row per chain, ids 1..8: row 1 keeps its ``seq`` and hash (the records already there
are chain 1, so nothing is re-hashed), rows 2..8 start empty at their chain's genesis value
(``broker.core.audit_chain.genesis_hash``). ``audit_events`` gets ``chain`` (1 for every existing record) and
``seq`` becomes unique per chain. The analytics watermark (``broker.analytics.rollup``) likewise becomes one row
per chain, row 1 keeping its place.

The downgrade refuses while any record is in a chain other than 1: those would no longer verify as one chain.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from broker.core.audit_chain import genesis_hash

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHAINS = 8  # the number of chains when this revision was written (broker.core.audit_chain.AUDIT_CHAINS)
_head = sa.table("audit_chain_head", sa.column("id", sa.Integer()), sa.column("seq", sa.Integer()),
                 sa.column("hash", sa.String()))
_events = sa.table("audit_events", sa.column("chain", sa.Integer()))
_watermark = sa.table("analytics_watermark", sa.column("id", sa.Integer()), sa.column("seq", sa.BigInteger()))


def upgrade() -> None:
    with op.batch_alter_table("audit_chain_head") as batch:
        batch.drop_constraint("ck_audit_chain_head_single_row", type_="check")
        batch.create_check_constraint("ck_audit_chain_head_chains", f"id BETWEEN 1 AND {_CHAINS}")
    op.bulk_insert(_head, [{"id": n, "seq": 0, "hash": genesis_hash(n)} for n in range(2, _CHAINS + 1)])
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("chain", sa.Integer(), nullable=False, server_default=sa.text("1")))
        batch.drop_constraint("uq_audit_events_seq", type_="unique")
        batch.create_unique_constraint("uq_audit_events_chain_seq", ["chain", "seq"])
    with op.batch_alter_table("analytics_watermark") as batch:
        batch.drop_constraint("ck_analytics_watermark_single_row", type_="check")
        batch.create_check_constraint("ck_analytics_watermark_chains", f"id BETWEEN 1 AND {_CHAINS}")
    op.bulk_insert(_watermark, [{"id": n, "seq": 0} for n in range(2, _CHAINS + 1)])


def downgrade() -> None:
    others = op.get_bind().execute(sa.select(sa.func.count()).select_from(_events).where(_events.c.chain != 1))
    if others.scalar_one():
        raise RuntimeError("audit records are in chains other than 1: they cannot be merged into one chain")
    op.execute(_watermark.delete().where(_watermark.c.id != 1))
    with op.batch_alter_table("analytics_watermark") as batch:
        batch.drop_constraint("ck_analytics_watermark_chains", type_="check")
        batch.create_check_constraint("ck_analytics_watermark_single_row", "id = 1")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_constraint("uq_audit_events_chain_seq", type_="unique")
        batch.create_unique_constraint("uq_audit_events_seq", ["seq"])
        batch.drop_column("chain")
    op.execute(_head.delete().where(_head.c.id != 1))
    with op.batch_alter_table("audit_chain_head") as batch:
        batch.drop_constraint("ck_audit_chain_head_chains", type_="check")
        batch.create_check_constraint("ck_audit_chain_head_single_row", "id = 1")
