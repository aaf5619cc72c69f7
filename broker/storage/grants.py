"""Grants of the OpenID provider and the tokens issued from them, in SQL (``broker.core.ports.GrantStore``).

Tokens are stored only as ``core.grants.token_hash(token)``: the table never holds a usable token. The claim values
a grant released at its sign-in (``Grant.released``, issue 21) are personal data: they are sealed like the claims
of linked identities (``broker.storage.sealing``, AES-256-GCM under the claims keys) bound to the grant's id, and
kept in the payload under ``released``; a value that does not open (another grant's, a key no longer configured)
or is not sealed reads as not kept, so the provider reads the unified profile instead. Whenever one
transaction touches both tables, it writes the grant row before the token rows (as ``revoke_grant`` does), so two
revocations running at once on PostgreSQL cannot wait on each other's locks.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Table, and_, bindparam, delete, exists, insert, select, update

from broker.core.claims import ClaimValue
from broker.core.grants import Grant, NewToken, Redemption, TokenKind, TokenRecord, token_hash
from broker.core.ports import GrantStore
from broker.storage.codec import decode_claims, encode_claims
from broker.storage.db import connection_factory, rowcount, session_factory
from broker.storage.sealing import VERSION, Sealer, UnreadableValue
from broker.storage.tables import OidcGrantRow, OidcTokenRow

log = logging.getLogger("broker.security")

#: kinds that ``redeem`` consumes; an access token is used many times until it expires
SINGLE_USE = frozenset({TokenKind.CODE, TokenKind.REFRESH})

#: how long a grant without any token is kept by ``purge_expired``: it is being issued its first one
GRANT_GRACE = timedelta(days=1)


_GRANTS: Table = OidcGrantRow.__table__  # type: ignore[assignment]
_TOKENS: Table = OidcTokenRow.__table__  # type: ignore[assignment]


def _live(kind: str | ColumnElement[str], digest: str | ColumnElement[str],
          now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    """The token row ``digest`` of ``kind`` (a ``TokenKind`` value): unexpired, unused, unrevoked, and of an
    unrevoked grant."""
    grant_live = (
        exists()
        .where(_GRANTS.c.grant_id == _TOKENS.c.grant_id, _GRANTS.c.revoked_at.is_(None))
        .correlate_except(_GRANTS)
    )
    return and_(
        _TOKENS.c.token_hash == digest,
        _TOKENS.c.kind == kind,
        _TOKENS.c.used_at.is_(None),
        _TOKENS.c.revoked_at.is_(None),
        _TOKENS.c.expires_at > now,
        grant_live,
    )


# The login path's statements in SQLAlchemy Core on the tables, built once (issue 21: the ORM's statement
# handling only added CPU to them; ``bench/session_calls_bench.py``). They run through the store's session makers,
# so inside a login step they join the step's transaction (``broker.storage.unit_of_work``).
_INSERT_GRANT = insert(_GRANTS)
_INSERT_TOKEN = insert(_TOKENS)
_FIND = (
    select(_TOKENS.c.issued_at, _TOKENS.c.expires_at, _GRANTS.c.payload)
    .join(_GRANTS, _GRANTS.c.grant_id == _TOKENS.c.grant_id)
    .where(_live(bindparam("kind"), bindparam("digest"), bindparam("now")))
)
# ``redeem``: on success one statement, whose RETURNING reads the grant's payload. Not ``UPDATE ... FROM
# oidc_grants RETURNING oidc_grants.payload``: SQLite's RETURNING may name the updated table only
# (sqlite.org/lang_returning.html, "Limitations"). Not correlated to the updated row either: SQLAlchemy renders
# SQLite's RETURNING without table names, subqueries included, so ``oidc_grants.grant_id = oidc_tokens.grant_id``
# would become ``grant_id = grant_id``, true of every grant; names left unqualified here resolve to the innermost
# FROM, which is the right one. ``of_kind``: a bind named ``kind`` would be taken for the SET value of that column.
_OWNER = (select(_TOKENS.c.grant_id).where(_TOKENS.c.token_hash == bindparam("digest")).correlate(None)
          .scalar_subquery())
_CONSUME = (
    update(_TOKENS)
    .where(_live(bindparam("of_kind"), bindparam("digest"), bindparam("now")))
    .values(used_at=bindparam("now"))
    .returning(select(_GRANTS.c.payload).where(_GRANTS.c.grant_id == _OWNER).scalar_subquery())
)
_EARLIER = (
    select(_TOKENS.c.used_at, _GRANTS.c.payload)
    .join(_GRANTS, _GRANTS.c.grant_id == _TOKENS.c.grant_id)
    .where(_TOKENS.c.token_hash == bindparam("digest"), _TOKENS.c.kind == bindparam("kind"))
)


class SqlGrantStore:
    """Single-use tokens are consumed by one conditional ``UPDATE``; the database settles concurrent uses."""

    def __init__(self, engine: Engine, sealer: Sealer | None = None) -> None:
        """``sealer``: the claims key ring, to keep ``Grant.released``; None (maintenance commands that only
        purge): released values are not kept, and stored ones read as not kept."""
        self._sessions = session_factory(engine)
        self._core = connection_factory(engine)  # the login path and token endpoint: Core statements
        self._sealer = sealer

    def _payload(self, grant: Grant) -> str:
        """``Grant.to_json``, with the released values sealed under ``released`` when there are any to keep."""
        if grant.released is None or self._sealer is None:
            return grant.to_json()
        sealed = self._sealer.seal(encode_claims(grant.released), released_context(grant.grant_id))
        return json.dumps({**json.loads(grant.to_json()), "released": sealed})

    def _grant(self, payload: str) -> Grant:
        """The stored grant, with its released values when they open (see the module docstring)."""
        grant = Grant.from_json(payload)
        sealed = json.loads(payload).get("released")
        return grant if sealed is None else replace(grant, released=self._open(grant.grant_id, sealed))

    def _open(self, grant_id: str, sealed: object) -> dict[str, ClaimValue] | None:
        if self._sealer is None:
            return None
        if not isinstance(sealed, str) or not sealed.startswith(VERSION + "."):  # no plain values, ever
            log.warning("released claims of grant %s are not sealed: ignored", grant_id)
            return None
        try:
            return decode_claims(self._sealer.open(sealed, released_context(grant_id)))
        except (UnreadableValue, ValueError, RecursionError) as exc:
            log.warning("released claims of grant %s are unreadable, read from the profile: %s", grant_id,
                        exc if isinstance(exc, UnreadableValue) else type(exc).__name__)
            return None

    def create_grant(self, grant: Grant, *tokens: NewToken) -> None:
        """Store ``grant`` and its first ``tokens`` in one transaction, the grant row first (Core inserts, sent at
        once; in a step, ``StepConnections.begin`` flushes the step's pending ORM writes, such as its account, first);
        an ``IntegrityError`` when its id is taken or its account does not exist."""
        values = {"grant_id": grant.grant_id, "client_id": grant.client_id, "account_id": grant.account_id,
                  "payload": self._payload(grant), "created_at": grant.created_at, "revoked_at": None,
                  "sid": grant.sid or None}
        rows = [_token_values(token.kind, token.token, grant.grant_id, token.issued_at, token.expires_at)
                for token in tokens]
        with self._core.begin() as connection:
            connection.execute(_INSERT_GRANT, values)
            if rows:
                connection.execute(_INSERT_TOKEN, rows)

    def issue(self, kind: TokenKind, token: str, grant_id: str, issued_at: datetime, expires_at: datetime) -> None:
        """Record the token's hash; an ``IntegrityError`` for an unknown grant (or, never in practice, a
        token issued twice)."""
        with self._core.begin() as connection:
            connection.execute(_INSERT_TOKEN, _token_values(kind, token, grant_id, issued_at, expires_at))

    def redeem(self, kind: TokenKind, token: str, now: datetime) -> tuple[Redemption, Grant | None]:
        """One ``UPDATE ... SET used_at WHERE <live> RETURNING <its grant's payload>`` (``_CONSUME``): of
        concurrent redemptions the database lets exactly one match the row. When it does not match, a token that
        had been used is ``REUSED`` with its grant, even when it has expired since or its grant is already revoked,
        so a replay is always recognised and the caller can revoke the family; anything else is ``INVALID``.
        ``ValueError`` for access tokens."""
        if kind not in SINGLE_USE:
            raise ValueError(f"{kind.value} tokens are not single-use: use find()")
        digest = token_hash(token)
        with self._core.begin() as connection:
            consumed = connection.execute(_CONSUME, {"of_kind": kind.value, "digest": digest, "now": now}).first()
            if consumed is not None:
                return Redemption.OK, self._grant(consumed[0])
            earlier = connection.execute(_EARLIER, {"kind": kind.value, "digest": digest}).one_or_none()
        if earlier is not None and earlier.used_at is not None:
            return Redemption.REUSED, self._grant(earlier.payload)
        return Redemption.INVALID, None

    def find(self, kind: TokenKind, token: str, now: datetime) -> TokenRecord | None:
        with self._core() as connection:
            row = connection.execute(_FIND, {"kind": kind.value, "digest": token_hash(token), "now": now}).one_or_none()
        if row is None:
            return None
        return TokenRecord(kind=kind, grant=self._grant(row.payload), expires_at=row.expires_at,
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
                owner = select(OidcTokenRow.grant_id).where(_live(kind.value, digest, now)).scalar_subquery()
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
                    .where(_live(kind.value, digest, now))
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
        return TokenRecord(kind=kind, grant=self._grant(row.payload), expires_at=row.expires_at,
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


def _token_values(kind: TokenKind, token: str, grant_id: str, issued_at: datetime,
                  expires_at: datetime) -> dict[str, Any]:
    """The values of a token's row: its hash only, never the token."""
    return {"token_hash": token_hash(token), "kind": kind.value, "grant_id": grant_id, "issued_at": issued_at,
            "expires_at": expires_at, "used_at": None, "revoked_at": None}


def released_context(grant_id: str) -> tuple[str, ...]:
    """What a sealed ``released`` value is bound to: its place and its grant, unique and never changed."""
    return ("oidc_grants.released", grant_id)


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
