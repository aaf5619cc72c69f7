"""Audit chain: each audit record gets ``seq``, ``prev_hash`` and ``hash``; the chain head in its own table.

Records already there are chained in ``id`` order with ``broker.core.audit_chain.record_hash`` (version 1
of the encoding, which never changes), and the head is set to the last of them (or to the empty chain).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from broker.core.audit_chain import GENESIS_HASH, record_hash

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000

_events = sa.table(
    "audit_events",
    sa.column("id", sa.Integer()), sa.column("at", sa.DateTime(timezone=True)), sa.column("kind", sa.String()),
    sa.column("account_id", sa.String()), sa.column("upstream", sa.String()), sa.column("downstream", sa.String()),
    sa.column("reason", sa.String()), sa.column("reference", sa.String()), sa.column("seq", sa.Integer()),
    sa.column("prev_hash", sa.String()), sa.column("hash", sa.String()),
)
_head = sa.table("audit_chain_head", sa.column("id", sa.Integer()), sa.column("seq", sa.Integer()),
                 sa.column("hash", sa.String()))


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("seq", sa.Integer(), nullable=True))
    op.add_column("audit_events", sa.Column("prev_hash", sa.String(64), nullable=True))
    op.add_column("audit_events", sa.Column("hash", sa.String(64), nullable=True))
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_audit_chain_head_single_row"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_chain_head"),
    )
    seq, prev_hash = _chain_existing_records(op.get_bind())
    op.bulk_insert(_head, [{"id": 1, "seq": seq, "hash": prev_hash}])
    with op.batch_alter_table("audit_events") as batch:
        batch.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("prev_hash", existing_type=sa.String(64), nullable=False)
        batch.alter_column("hash", existing_type=sa.String(64), nullable=False)
        batch.create_unique_constraint("uq_audit_events_seq", ["seq"])


def _chain_existing_records(connection: sa.Connection) -> tuple[int, str]:
    """Give the existing records ``seq`` 1..n in ``id`` order and their hashes; the last ``(seq, hash)``."""
    seq, prev_hash, last_id = 0, GENESIS_HASH, None
    while True:
        query = sa.select(_events).order_by(_events.c.id).limit(_BATCH)
        if last_id is not None:
            query = query.where(_events.c.id > last_id)
        rows = connection.execute(query).all()
        if not rows:
            return seq, prev_hash
        updates = []
        for row in rows:
            seq += 1
            at = row.at if isinstance(row.at, datetime) else datetime.fromisoformat(str(row.at))
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at  # SQLite keeps UTC without an offset
            digest = record_hash(prev_hash, seq, at, row.kind, row.account_id, row.upstream, row.downstream,
                                 row.reason, row.reference)
            updates.append({"row_id": row.id, "new_seq": seq, "new_prev": prev_hash, "new_hash": digest})
            prev_hash, last_id = digest, row.id
        connection.execute(
            _events.update().where(_events.c.id == sa.bindparam("row_id")).values(
                seq=sa.bindparam("new_seq"), prev_hash=sa.bindparam("new_prev"), hash=sa.bindparam("new_hash")),
            updates,
        )


def downgrade() -> None:
    op.drop_table("audit_chain_head")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_constraint("uq_audit_events_seq", type_="unique")
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
        batch.drop_column("seq")
