"""Accounts and the upstream identities linked to them, in SQL (``broker.core.ports.AccountStore``)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from broker.core.claims import ClaimValue, merge_assertions
from broker.core.model import Account, LinkedIdentity, UpstreamIdentity
from broker.core.ports import AccountStore
from broker.storage.codec import decode_claims, encode_claims
from broker.storage.db import session_factory
from broker.storage.tables import AccountRow, LinkedIdentityRow


class SqlAccountStore:
    """Accounts are found by the exact (issuer, subject) pair only, never by a claim such as e-mail."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

    def find_by_identity(self, issuer: str, subject: str) -> Account | None:
        query = (
            select(AccountRow)
            .join(LinkedIdentityRow, LinkedIdentityRow.account_id == AccountRow.account_id)
            .where(LinkedIdentityRow.issuer == issuer, LinkedIdentityRow.subject == subject)
        )
        with self._sessions() as session:
            row = session.scalars(query).one_or_none()
            return _account(row) if row is not None else None

    def create_with_identity(self, identity: UpstreamIdentity, now: datetime) -> tuple[Account, bool]:
        """Insert account and identity in one transaction; the unique (issuer, subject) settles races."""
        account = AccountRow(account_id=str(uuid.uuid4()), created_at=now)
        linked = LinkedIdentityRow(
            account_id=account.account_id,
            issuer=identity.issuer,
            subject=identity.subject,
            upstream=identity.upstream,
            first_used=now,
            last_used=now,
            last_acr=identity.acr,
            last_claims=encode_claims(identity.claims),
        )
        try:
            with self._sessions.begin() as session:
                session.add(account)
                session.flush()  # the account row before the identity row that refers to it
                session.add(linked)
        except IntegrityError:
            # Lost the race (or the identity already existed): the transaction is rolled back; the winner's
            # account is committed, since the unique constraint waited for it. Anything else re-raises.
            existing = self.find_by_identity(identity.issuer, identity.subject)
            if existing is None:
                raise
            return existing, False
        return _account(account), True

    def record_use(self, account_id: str, identity: UpstreamIdentity, now: datetime) -> None:
        query = (
            select(LinkedIdentityRow)
            .where(
                LinkedIdentityRow.account_id == account_id,
                LinkedIdentityRow.issuer == identity.issuer,
                LinkedIdentityRow.subject == identity.subject,
            )
            .with_for_update()  # two logins of one identity at once must not lose each other's claims
        )
        with self._sessions.begin() as session:
            row = session.scalars(query).first()
            if row is None:
                raise LookupError("the identity is not linked to that account")
            merged = merge_assertions(decode_claims(row.last_claims), identity.claims, identity.sent_once)
            row.last_used, row.last_acr, row.last_claims = now, identity.acr, encode_claims(merged)

    def last_claims(self, account_id: str) -> Mapping[str, ClaimValue]:
        query = (
            select(LinkedIdentityRow.last_claims)
            .where(LinkedIdentityRow.account_id == account_id)
            .order_by(LinkedIdentityRow.last_used.desc(), LinkedIdentityRow.id.desc())
            .limit(1)
        )
        with self._sessions() as session:
            text = session.scalars(query).first()
        return decode_claims(text) if text is not None else {}

    def get(self, account_id: str) -> Account | None:
        with self._sessions() as session:
            row = session.get(AccountRow, account_id)
            return _account(row) if row is not None else None

    def identities(self, account_id: str) -> Sequence[LinkedIdentity]:
        query = (
            select(LinkedIdentityRow)
            .where(LinkedIdentityRow.account_id == account_id)
            .order_by(LinkedIdentityRow.first_used, LinkedIdentityRow.id)
        )
        with self._sessions() as session:
            return [
                LinkedIdentity(
                    account_id=row.account_id,
                    issuer=row.issuer,
                    subject=row.subject,
                    upstream=row.upstream,
                    first_used=row.first_used,
                    last_used=row.last_used,
                )
                for row in session.scalars(query)
            ]


def _account(row: AccountRow) -> Account:
    return Account(account_id=row.account_id, created_at=row.created_at)


# mypy checks here that the class satisfies the port the core depends on.
_check: type[AccountStore] = SqlAccountStore
