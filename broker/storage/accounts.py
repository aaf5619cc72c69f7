"""Accounts and the upstream identities linked to them, in SQL (``broker.core.ports.AccountStore``).

The claims each identity last asserted are personal data: they are stored sealed (``broker.storage.sealing``),
bound to their identity's (issuer, subject), and re-sealed under the current key on every write. A stored value
that cannot be opened (tampered, moved from another row, sealed under a key no longer configured) never fails a
login: it is logged on ``broker.security`` (row id and reason, never the value) and read as no claims; the next
login of that identity overwrites it with what the upstream asserts then. ``create_app`` refuses to start when
the newest stored value does not open (``broker.storage.claims_rotation.check_claims_keys``), so a wrong key
is caught before it can overwrite anything.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Engine, Row, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from broker.core.claims import ClaimValue, merge_assertions
from broker.core.email_address import canonical_email, is_another_address
from broker.core.model import Account, LinkedIdentity, UpstreamIdentity
from broker.core.ports import AccountStore, IdentityLinks, LinkOutcome
from broker.core.profile import IdentityClaims
from broker.storage.codec import decode_claims, encode_claims
from broker.storage.db import connection_factory, session_factory
from broker.storage.sealing import Sealer, UnreadableValue
from broker.storage.tables import AccountRow, LinkedIdentityRow

log = logging.getLogger("broker.security")


class _SealedClaims(Protocol):
    """A linked identity's row as far as its claims are read (``_FOR_USE``, or all its columns)."""

    id: int
    issuer: str
    subject: str
    last_claims: str


# The login path's statements in SQLAlchemy Core on the tables (issue 21: the ORM's unit of work and identity map
# cost more CPU than the query), built once; values are bound per call. They run on the stores' step sessions
# (``broker.storage.unit_of_work``), so they join a login step's transaction like the ORM statements did.
_accounts = AccountRow.metadata.tables[AccountRow.__tablename__]
_linked_rows = LinkedIdentityRow.metadata.tables[LinkedIdentityRow.__tablename__]
_of_account = _linked_rows.c.account_id == bindparam("account_id")
_FIND_BY_IDENTITY = (
    select(_accounts)
    .join(_linked_rows, _linked_rows.c.account_id == _accounts.c.account_id)
    .where(_linked_rows.c.issuer == bindparam("issuer"), _linked_rows.c.subject == bindparam("subject"))
)
_GET = select(_accounts).where(_accounts.c.account_id == bindparam("account_id"))
_IDENTITIES = select(_linked_rows).where(_of_account).order_by(_linked_rows.c.first_used, _linked_rows.c.id)
_LAST_USED = (select(_linked_rows).where(_of_account)
              .order_by(_linked_rows.c.last_used.desc(), _linked_rows.c.id.desc()).limit(1))
_BY_EMAIL_INDEX = select(_linked_rows).where(_linked_rows.c.email_index == bindparam("email_index"))
_FOR_USE = (
    select(_linked_rows.c.id, _linked_rows.c.issuer, _linked_rows.c.subject, _linked_rows.c.last_claims)
    .where(_of_account, _linked_rows.c.issuer == bindparam("issuer"), _linked_rows.c.subject == bindparam("subject"))
    .with_for_update()  # two logins of one identity at once must not lose each other's claims
)
_USED = update(_linked_rows).where(_linked_rows.c.id == bindparam("row_id"))  # SET: the columns passed
_INSERT_ACCOUNT = insert(_accounts)
_INSERT_LINKED = insert(_linked_rows)


class SqlAccountStore:
    """Accounts are found by the exact (issuer, subject) pair only, never by a claim such as e-mail."""

    def __init__(self, engine: Engine, sealer: Sealer, email_index: Callable[[str], str] | None = None) -> None:
        """``email_index(address)`` keys a verified address for ``verified_email_owners`` (a keyed hash: the
        claims are sealed, and the index must not reveal the address either); None: no link offers."""
        self._sessions = session_factory(engine)  # the ORM: link, unlink, disable, delete
        self._core = connection_factory(engine)  # the login path's Core statements; reads without a transaction
        self._sealer = sealer
        self._email_index = email_index

    def _index_of(self, identity: UpstreamIdentity) -> str | None:
        """The index of the address only while the upstream asserts it verified (``linkable_email``)."""
        email = identity.linkable_email
        canonical = canonical_email(email) if email is not None else None
        if canonical is None or self._email_index is None:
            return None  # no canonical form (look-alike or unsafe characters): matches no other address
        return self._email_index(canonical)

    def verified_email_owners(self, email: str) -> Sequence[LinkedIdentity]:
        """Identities whose upstream last asserted ``email`` as verified (link offers, issue 5), compared in
        ``broker.core.email_address.canonical_email`` form; an address without one matches nothing."""
        canonical = canonical_email(email)
        if self._email_index is None or canonical is None:
            return []
        with self._core() as connection:
            rows = connection.execute(_BY_EMAIL_INDEX, {"email_index": self._email_index(canonical)})
            return [_linked(row) for row in rows]

    def find_by_identity(self, issuer: str, subject: str) -> Account | None:
        with self._core() as connection:
            row = connection.execute(_FIND_BY_IDENTITY, {"issuer": issuer, "subject": subject}).one_or_none()
            return _account(row) if row is not None else None

    def create_with_identity(self, identity: UpstreamIdentity, now: datetime) -> tuple[Account, bool]:
        """Insert account and identity in one transaction; the unique (issuer, subject) settles races."""
        account = Account(account_id=str(uuid.uuid4()), created_at=now, disabled_at=None, disabled_reason=None)
        linked = {
            "account_id": account.account_id, "issuer": identity.issuer, "subject": identity.subject,
            "upstream": identity.upstream, "first_used": now, "last_used": now, "last_acr": identity.acr,
            "last_claims": self._seal(identity.claims, identity.issuer, identity.subject),
            "email_index": self._index_of(identity),
        }
        try:
            with self._core.begin(savepoint=True) as connection:
                # Core statements run in the order given (no unit of work): the account before its identity
                connection.execute(_INSERT_ACCOUNT, {"account_id": account.account_id, "created_at": now})
                connection.execute(_INSERT_LINKED, linked)
        except IntegrityError:
            # Lost the race (or the identity already existed): the transaction is rolled back; the winner's
            # account is committed, since the unique constraint waited for it. Anything else re-raises.
            existing = self.find_by_identity(identity.issuer, identity.subject)
            if existing is None:
                raise
            return existing, False
        return account, True

    def record_use(self, account_id: str, identity: UpstreamIdentity, now: datetime) -> bool:
        """Also whether the verified address changed (``AccountStore.record_use``): the address last asserted is
        read from the sealed claims before they are replaced, so this works without an ``email_index``."""
        which = {"account_id": account_id, "issuer": identity.issuer, "subject": identity.subject}
        with self._core.begin() as connection:
            row = connection.execute(_FOR_USE, which).first()  # locked until the transaction (or step) ends
            if row is None:
                raise LookupError("the identity is not linked to that account")
            before = self._open(row)
            merged = merge_assertions(before, identity.claims, identity.sent_once)
            connection.execute(_USED, {
                "row_id": row.id, "last_used": now, "last_acr": identity.acr,
                "last_claims": self._seal(merged, identity.issuer, identity.subject),
                "email_index": self._index_of(identity),  # gone as soon as the address is no longer verified
            })
        return is_another_address(before.get("email"), identity.linkable_email)

    def link_identity(self, account_id: str, identity: UpstreamIdentity, now: datetime) -> LinkOutcome:
        """Link ``identity`` to the account (``IdentityLinks``); the unique (issuer, subject) refuses a second
        owner, so an identity of another account is reported (``CONFLICT``), never moved."""
        linked = LinkedIdentityRow(
            account_id=account_id, issuer=identity.issuer, subject=identity.subject, upstream=identity.upstream,
            first_used=now, last_used=now, last_acr=identity.acr,
            last_claims=self._seal(identity.claims, identity.issuer, identity.subject),
            email_index=self._index_of(identity),
        )
        try:
            with self._sessions.begin(savepoint=True) as session:
                session.add(linked)
        except IntegrityError:
            owner = self.find_by_identity(identity.issuer, identity.subject)
            if owner is None:
                raise
            return LinkOutcome.ALREADY_LINKED if owner.account_id == account_id else LinkOutcome.CONFLICT
        return LinkOutcome.LINKED

    def unlink_identity(self, account_id: str, issuer: str, subject: str) -> bool:
        """Remove one link, never the account's last: the account's rows are locked first (PostgreSQL), and
        the delete itself counts them (one statement, so SQLite's single writer settles concurrent unlinks)."""
        rows = LinkedIdentityRow.__table__
        others = select(func.count()).select_from(rows).where(rows.c.account_id == account_id).scalar_subquery()
        with self._sessions.begin() as session:
            session.scalars(select(LinkedIdentityRow.id).where(LinkedIdentityRow.account_id == account_id)
                            .with_for_update()).all()
            result = session.execute(delete(LinkedIdentityRow).where(
                LinkedIdentityRow.account_id == account_id, LinkedIdentityRow.issuer == issuer,
                LinkedIdentityRow.subject == subject, others > 1))
            return bool(getattr(result, "rowcount", 0))

    def last_claims(self, account_id: str) -> Mapping[str, ClaimValue]:
        with self._core() as connection:
            row = connection.execute(_LAST_USED, {"account_id": account_id}).first()
            return self._open(row) if row is not None else {}

    def identity_claims(self, account_id: str) -> Sequence[IdentityClaims]:
        """Every linked identity's claims, in the order the identities were linked; unreadable ones are left
        out (logged, as in ``last_claims``), so one bad row costs its own values only."""
        found: list[IdentityClaims] = []
        with self._core() as connection:
            for row in connection.execute(_IDENTITIES, {"account_id": account_id}):
                claims = self._read(row)
                if claims is not None:
                    found.append(IdentityClaims(_linked(row), claims, row.last_acr))
        return found

    def get(self, account_id: str) -> Account | None:
        with self._core() as connection:
            row = connection.execute(_GET, {"account_id": account_id}).one_or_none()
            return _account(row) if row is not None else None

    def identities(self, account_id: str) -> Sequence[LinkedIdentity]:
        with self._core() as connection:
            return [_linked(row) for row in connection.execute(_IDENTITIES, {"account_id": account_id})]

    def set_disabled(self, account_id: str, at: datetime | None, reason: str | None) -> bool:
        """Disable (``at``) or enable (None) the account; its reason is cleared with it."""
        with self._sessions.begin() as session:
            row = session.get(AccountRow, account_id)
            if row is None:
                return False
            row.disabled_at, row.disabled_reason = at, reason if at is not None else None
        return True

    def delete_account(self, account_id: str) -> bool:
        """Erase the account (GDPR Art. 17): the database's foreign-key cascades remove its linked identities
        (with their claims), consents, OpenID grants and tokens, and SSO sessions with their participants. Audit
        records name accounts only by this pseudonymous id and stay. ``False`` when there was no such account."""
        with self._sessions.begin() as session:
            row = session.get(AccountRow, account_id)
            if row is None:
                return False
            session.delete(row)
        return True

    def _seal(self, claims: Mapping[str, ClaimValue], issuer: str, subject: str) -> str:
        return self._sealer.seal(encode_claims(claims), claims_context(issuer, subject))

    def _open(self, row: _SealedClaims) -> dict[str, ClaimValue]:
        """The row's claims; none when they cannot be read (see the module docstring)."""
        claims = self._read(row)
        return claims if claims is not None else {}

    def _read(self, row: _SealedClaims) -> dict[str, ClaimValue] | None:
        """The row's claims; None (logged) when they cannot be read."""
        try:
            return decode_claims(self._sealer.open(row.last_claims, claims_context(row.issuer, row.subject)))
        except (UnreadableValue, ValueError, RecursionError) as exc:  # ValueError: broken legacy JSON
            reason = str(exc) if isinstance(exc, UnreadableValue) else "legacy claims are not valid JSON"
            log.warning("claims of linked identity %s are unreadable, treated as none: %s", row.id, reason)
            return None


def claims_context(issuer: str, subject: str) -> tuple[str, ...]:
    """What a sealed ``last_claims`` value is bound to: its column and its identity, unique and never changed."""
    return ("linked_identities.last_claims", issuer, subject)


def _account(row: Row[Any]) -> Account:
    return Account(account_id=row.account_id, created_at=row.created_at, disabled_at=row.disabled_at,
                   disabled_reason=row.disabled_reason)


def _linked(row: Row[Any]) -> LinkedIdentity:
    return LinkedIdentity(account_id=row.account_id, issuer=row.issuer, subject=row.subject,
                          upstream=row.upstream, first_used=row.first_used, last_used=row.last_used)


# mypy checks here that the class satisfies the port the core depends on.
_check: type[AccountStore] = SqlAccountStore
_check_links: type[IdentityLinks] = SqlAccountStore
