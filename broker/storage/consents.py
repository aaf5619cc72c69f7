"""Consent answers in SQL (``broker.core.ports.ConsentStore``): an append-only history per account and app."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Row, bindparam, func, insert, select

from broker.core.consent import Consent, ConsentHow
from broker.core.ports import ConsentStore
from broker.storage.db import connection_factory, reader_factory
from broker.storage.tables import ConsentRow

# The login path's statements in SQLAlchemy Core, built once (issue 21: the ORM added only cost); they run on
# the store's step connections, so they join a login step's transaction (``broker.storage.unit_of_work``).
_consents = ConsentRow.metadata.tables[ConsentRow.__tablename__]
_CURRENT = (select(_consents)
            .where(_consents.c.account_id == bindparam("account_id"), _consents.c.party_id == bindparam("party_id"))
            .order_by(_consents.c.id.desc()).limit(1))
_RECORD = insert(_consents)


def _consent(row: ConsentRow | Row[Any]) -> Consent:
    granted, declined = Consent.claims_from_json(row.claims)
    return Consent(row.account_id, row.party_id, granted, declined, row.policy_version, row.at, ConsentHow(row.how))


class SqlConsentStore:
    def __init__(self, engine: Engine) -> None:
        self._reads = reader_factory(engine)  # no transaction: one round trip per read
        self._core = connection_factory(engine)  # the login path's two statements

    def current(self, account_id: str, party_id: str) -> Consent | None:
        with self._core() as connection:
            row = connection.execute(_CURRENT, {"account_id": account_id, "party_id": party_id}).one_or_none()
            return _consent(row) if row is not None else None

    def record(self, consent: Consent) -> None:
        with self._core.begin() as connection:
            connection.execute(_RECORD, {"account_id": consent.account_id, "party_id": consent.party_id,
                                         "claims": consent.to_json(), "policy_version": consent.policy_version,
                                         "how": consent.how.value, "at": consent.at})

    def in_force(self, account_id: str) -> Sequence[Consent]:
        newest = (select(func.max(ConsentRow.id)).where(ConsentRow.account_id == account_id)
                  .group_by(ConsentRow.party_id))
        query = select(ConsentRow).where(ConsentRow.id.in_(newest)).order_by(ConsentRow.id.desc())
        with self._reads() as session:
            return [_consent(row) for row in session.scalars(query)]

    def history(self, account_id: str) -> Sequence[Consent]:
        query = select(ConsentRow).where(ConsentRow.account_id == account_id).order_by(ConsentRow.id)
        with self._reads() as session:
            return [_consent(row) for row in session.scalars(query)]

    def accounts_with(self, party_id: str, limit: int) -> Sequence[str]:
        """By the index on ``party_id`` (revision 0022: a hash index on PostgreSQL, any length of id)."""
        query = select(ConsentRow.account_id).where(ConsentRow.party_id == party_id).distinct().limit(limit)
        with self._reads() as session:
            return list(session.scalars(query))


_check: type[ConsentStore] = SqlConsentStore
