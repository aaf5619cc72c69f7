"""Session ids as columns (issue 18, OpenID Connect logout).

- ``oidc_grants.sid``: the SSO session a grant was issued in (``Grant.sid``), indexed, so ending a session
  revokes its grants by an equality lookup (``SqlGrantStore.revoke_session``) instead of a ``LIKE`` scan of every
  payload. The grants already stored get it from their JSON payload, in batches of ``_BATCH`` rows in
  ``grant_id`` order (keyset paging, the same on SQLite and PostgreSQL); a payload that cannot be read, or whose
  ``sid`` is empty or longer than the column, keeps NULL (no SSO session has such an id).
- ``sso_sessions.upstream_sid``: the upstream OpenID provider's own session id, its ID token's ``sid``
  (Back-Channel Logout 1.0 §2.1), with an index on (upstream, upstream_sid), so a logout token naming it ends that
  session only (§2.7). Sessions started before this revision have none: they are ended as before, every session
  of the person from that provider (``broker.journeys.upstream_backchannel``).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-09
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 500
#: ``oidc_grants.sid``, as ``sso_sessions.sid``
_SID_LENGTH = 64

_grants = sa.table("oidc_grants", sa.column("grant_id", sa.String()), sa.column("payload", sa.Text()),
                   sa.column("sid", sa.String()))


def upgrade() -> None:
    with op.batch_alter_table("oidc_grants") as batch:
        batch.add_column(sa.Column("sid", sa.String(_SID_LENGTH), nullable=True))
    backfill_grant_sids(op.get_bind())
    with op.batch_alter_table("oidc_grants") as batch:
        batch.create_index("ix_oidc_grants_sid", ["sid"])
    with op.batch_alter_table("sso_sessions") as batch:
        batch.add_column(sa.Column("upstream_sid", sa.String(255), nullable=True))
        batch.create_index("ix_sso_sessions_upstream_upstream_sid", ["upstream", "upstream_sid"])


def backfill_grant_sids(connection: sa.Connection, batch_size: int = _BATCH) -> int:
    """Copy each stored grant's ``sid`` out of its payload into the column; how many rows got one."""
    filled, last_id = 0, None
    while True:
        query = sa.select(_grants.c.grant_id, _grants.c.payload).order_by(_grants.c.grant_id).limit(batch_size)
        if last_id is not None:
            query = query.where(_grants.c.grant_id > last_id)
        rows = connection.execute(query).all()
        if not rows:
            return filled
        updates = [{"row_id": row.grant_id, "new_sid": sid} for row in rows
                   if (sid := _sid_of(row.payload)) is not None]
        if updates:
            connection.execute(_grants.update().where(_grants.c.grant_id == sa.bindparam("row_id"))
                               .values(sid=sa.bindparam("new_sid")), updates)
        filled += len(updates)
        last_id = rows[-1].grant_id


def _sid_of(payload: str) -> str | None:
    """The ``sid`` member of a stored ``Grant.to_json()``, when it is a usable one."""
    try:
        sid = json.loads(payload).get("sid")
    except (ValueError, TypeError, AttributeError, RecursionError):
        return None
    return sid if isinstance(sid, str) and 0 < len(sid) <= _SID_LENGTH else None


def downgrade() -> None:
    with op.batch_alter_table("sso_sessions") as batch:
        batch.drop_index("ix_sso_sessions_upstream_upstream_sid")
        batch.drop_column("upstream_sid")
    with op.batch_alter_table("oidc_grants") as batch:
        batch.drop_index("ix_oidc_grants_sid")
        batch.drop_column("sid")
