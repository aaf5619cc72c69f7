"""Grants of the OpenID provider and the tokens issued from them, in SQL (``broker.core.ports.GrantStore``).

Tokens are stored only as ``core.grants.token_hash(token)``: the table never holds a usable token. Whenever one
transaction touches both tables, it writes the grant row before the token rows (as ``revoke_grant`` does), so two
revocations running at once on PostgreSQL cannot wait on each other's locks.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, Engine, and_, delete, exists, insert, select, update

from broker.core.grants import Grant, Redemption, TokenKind, TokenRecord, token_hash
from broker.core.ports import GrantStore
from broker.storage.db import rowcount, session_factory
from broker.storage.tables import OidcGrantRow, OidcTokenRow

#: kinds that ``redeem`` consumes; an access token is used many times until it expires
SINGLE_USE = frozenset({TokenKind.CODE, TokenKind.REFRESH})

#: how long a grant without any token is kept by ``purge_expired``: it is being issued its first one
GRANT_GRACE = timedelta(days=1)


def _live(kind: TokenKind, digest: str, now: datetime) -> ColumnElement[bool]:
    """The token row ``digest`` of ``kind``: unexpired, unused, unrevoked, and of an unrevoked grant."""
    grant_live = (
        exists()
        .where(OidcGrantRow.grant_id == OidcTokenRow.grant_id, OidcGrantRow.revoked_at.is_(None))
        .correlate_except(OidcGrantRow)
    )
    return and_(
        OidcTokenRow.token_hash == digest,
        OidcTokenRow.kind == kind.value,
        OidcTokenRow.used_at.is_(None),
        OidcTokenRow.revoked_at.is_(None),
        OidcTokenRow.expires_at > now,
        grant_live,
    )


class SqlGrantStore:
    """Single-use tokens are consumed by one conditional ``UPDATE``; the database settles concurrent uses."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

    def create_grant(self, grant: Grant) -> None:
        """Store ``grant``; an ``IntegrityError`` when its id is taken or its account does not exist."""
        statement = insert(OidcGrantRow).values(
            grant_id=grant.grant_id, client_id=grant.client_id, account_id=grant.account_id,
            payload=grant.to_json(), created_at=grant.created_at, revoked_at=None, sid=grant.sid or None,
        )
        with self._sessions.begin() as session:
            session.execute(statement)

    def issue(self, kind: TokenKind, token: str, grant_id: str, issued_at: datetime, expires_at: datetime) -> None:
        """Record the token's hash; an ``IntegrityError`` for an unknown grant (or, never in practice, a
        token issued twice)."""
        statement = insert(OidcTokenRow).values(
            token_hash=token_hash(token), kind=kind.value, grant_id=grant_id,
            issued_at=issued_at, expires_at=expires_at, used_at=None, revoked_at=None,
        )
        with self._sessions.begin() as session:
            session.execute(statement)

    def redeem(self, kind: TokenKind, token: str, now: datetime) -> tuple[Redemption, Grant | None]:
        """One ``UPDATE ... SET used_at WHERE <live> RETURNING``: of concurrent redemptions the database lets
        exactly one match the row. When it does not match, a token that had been used is ``REUSED`` with its
        grant, even when it has expired since or its grant is already revoked, so a replay is always recognised
        and the caller can revoke the family; anything else is ``INVALID``. ``ValueError`` for access tokens."""
        if kind not in SINGLE_USE:
            raise ValueError(f"{kind.value} tokens are not single-use: use find()")
        digest = token_hash(token)
        consume = (
            update(OidcTokenRow)
            .where(_live(kind, digest, now))
            .values(used_at=now)
            .returning(OidcTokenRow.grant_id)
            .execution_options(synchronize_session=False)
        )
        with self._sessions.begin() as session:
            grant_id = session.scalars(consume).one_or_none()
            if grant_id is not None:
                payload = session.scalars(select(OidcGrantRow.payload).where(OidcGrantRow.grant_id == grant_id)).one()
                return Redemption.OK, Grant.from_json(payload)
            earlier = session.execute(
                select(OidcTokenRow.used_at, OidcGrantRow.payload)
                .join(OidcGrantRow, OidcGrantRow.grant_id == OidcTokenRow.grant_id)
                .where(OidcTokenRow.token_hash == digest, OidcTokenRow.kind == kind.value)
            ).one_or_none()
        if earlier is not None and earlier.used_at is not None:
            return Redemption.REUSED, Grant.from_json(earlier.payload)
        return Redemption.INVALID, None

    def find(self, kind: TokenKind, token: str, now: datetime) -> TokenRecord | None:
        query = (
            select(OidcTokenRow.issued_at, OidcTokenRow.expires_at, OidcGrantRow.payload)
            .join(OidcGrantRow, OidcGrantRow.grant_id == OidcTokenRow.grant_id)
            .where(_live(kind, token_hash(token), now))
        )
        with self._sessions() as session:
            row = session.execute(query).one_or_none()
        if row is None:
            return None
        return TokenRecord(kind=kind, grant=Grant.from_json(row.payload), expires_at=row.expires_at,
                           issued_at=row.issued_at)

    def revoke_grant(self, grant_id: str, now: datetime) -> None:
        """The grant and every token of it get ``revoked_at``; earlier revocation times are kept."""
        with self._sessions.begin() as session:
            _revoke_family(session.connection(), grant_id, now)

    def revoke_for(self, client_id: str, account_id: str, now: datetime) -> int:
        """Every live grant of the account at the client, with its tokens (a consent was withdrawn)."""
        with self._sessions.begin() as session:
            connection = session.connection()
            grant_ids = connection.execute(
                select(OidcGrantRow.grant_id).where(OidcGrantRow.client_id == client_id,
                                                    OidcGrantRow.account_id == account_id,
                                                    OidcGrantRow.revoked_at.is_(None))
            ).scalars().all()
            for grant_id in grant_ids:
                _revoke_family(connection, grant_id, now)
            return len(grant_ids)

    def revoke_session(self, sid: str, now: datetime) -> int:
        """Every live grant issued in the SSO session ``sid``, with its tokens (the session ended): an equality
        lookup on the indexed ``sid`` column, which ``create_grant`` fills from ``Grant.sid`` (and revision 0016
        filled for the grants stored before it)."""
        if not sid:
            return 0
        with self._sessions.begin() as session:
            connection = session.connection()
            grant_ids = connection.execute(
                select(OidcGrantRow.grant_id)
                .where(OidcGrantRow.sid == sid, OidcGrantRow.revoked_at.is_(None))
                .order_by(OidcGrantRow.grant_id)
            ).scalars().all()
            return sum(_revoke_family(connection, grant_id, now) for grant_id in grant_ids)

    def revoke_token(self, kind: TokenKind, token: str, now: datetime) -> TokenRecord | None:
        """RFC 7009 §2.1: a refresh token is revoked with its whole grant, so the access tokens issued from the
        same authorization stop working too; an access token (or a code) is revoked alone."""
        digest = token_hash(token)
        with self._sessions.begin() as session:
            connection = session.connection()
            if kind is TokenKind.REFRESH:
                owner = select(OidcTokenRow.grant_id).where(_live(kind, digest, now)).scalar_subquery()
                grant_id = connection.execute(
                    update(OidcGrantRow)
                    .where(OidcGrantRow.grant_id == owner, OidcGrantRow.revoked_at.is_(None))
                    .values(revoked_at=now)
                    .returning(OidcGrantRow.grant_id)
                ).scalar_one_or_none()
                if grant_id is None:
                    return None
                _revoke_family(connection, grant_id, now)
            else:
                grant_id = connection.execute(
                    update(OidcTokenRow)
                    .where(_live(kind, digest, now))
                    .values(revoked_at=now)
                    .returning(OidcTokenRow.grant_id)
                ).scalar_one_or_none()
                if grant_id is None:
                    return None
            row = connection.execute(
                select(OidcTokenRow.issued_at, OidcTokenRow.expires_at, OidcGrantRow.payload)
                .join(OidcGrantRow, OidcGrantRow.grant_id == OidcTokenRow.grant_id)
                .where(OidcTokenRow.token_hash == digest)
            ).one()
        return TokenRecord(kind=kind, grant=Grant.from_json(row.payload), expires_at=row.expires_at,
                           issued_at=row.issued_at)

    def purge_expired(self, now: datetime) -> int:
        """Delete the tokens expired by ``now`` (used codes stay until then, so a replay is still recognised
        as one), then the grants with no token left that are older than ``GRANT_GRACE``; rows deleted.

        Two transactions, tokens first: purging never holds token locks while waiting for a grant's."""
        tokens = delete(OidcTokenRow).where(OidcTokenRow.expires_at <= now)
        has_token = exists().where(OidcTokenRow.grant_id == OidcGrantRow.grant_id).correlate_except(OidcTokenRow)
        grants = delete(OidcGrantRow).where(~has_token, OidcGrantRow.created_at < now - GRANT_GRACE)
        with self._sessions.begin() as session:
            deleted = session.connection().execute(tokens).rowcount
        with self._sessions.begin() as session:
            deleted += session.connection().execute(grants).rowcount
        return deleted


def _revoke_family(connection: Connection, grant_id: str, now: datetime) -> bool:
    """Revoke the grant, then its tokens (in that order; see the module's docstring); whether the grant was
    live until now (not revoked meanwhile by another caller)."""
    revoked = rowcount(connection.execute(
        update(OidcGrantRow)
        .where(OidcGrantRow.grant_id == grant_id, OidcGrantRow.revoked_at.is_(None))
        .values(revoked_at=now)
    ))
    connection.execute(
        update(OidcTokenRow)
        .where(OidcTokenRow.grant_id == grant_id, OidcTokenRow.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return revoked == 1


# mypy checks here that the class satisfies the port the core depends on.
_check: type[GrantStore] = SqlGrantStore
