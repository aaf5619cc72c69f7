"""Dynamically registered OpenID clients, in SQL (``broker.core.ports.ClientStore``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from broker.core.ports import ClientStore, StoredClient
from broker.storage.db import reader_factory, session_factory
from broker.storage.tables import OidcClientRow


class SqlClientStore:
    """Every broker instance reads the same rows, so a client registered at one is known at all."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)
        self._reads = reader_factory(engine)  # no transaction: one round trip per read

    def add(self, client: StoredClient) -> None:
        """Insert; the primary key settles two registrations of one client id (``ValueError`` for the second)."""
        row = OidcClientRow(
            client_id=client.client_id, client_metadata=client.metadata,
            registration_token_hash=client.registration_token_hash,
            created_at=client.created_at, updated_at=client.updated_at,
        )
        try:
            with self._sessions.begin(savepoint=True) as session:
                session.add(row)
        except IntegrityError as exc:
            if self.get(client.client_id) is None:  # not the primary key: something else is wrong
                raise
            raise ValueError(f"client id {client.client_id!r} is already registered") from exc

    def get(self, client_id: str) -> StoredClient | None:
        with self._reads() as session:
            row = session.get(OidcClientRow, client_id)
            return _client(row) if row is not None else None

    def replace(self, client_id: str, metadata: str, now: datetime) -> bool:
        statement = (
            update(OidcClientRow)
            .where(OidcClientRow.client_id == client_id)
            .values(client_metadata=metadata, updated_at=now)
        )
        with self._sessions.begin() as session:
            return session.connection().execute(statement).rowcount == 1

    def remove(self, client_id: str) -> bool:
        statement = delete(OidcClientRow).where(OidcClientRow.client_id == client_id)
        with self._sessions.begin() as session:
            return session.connection().execute(statement).rowcount == 1

    def all(self) -> Sequence[StoredClient]:
        """Oldest registration first."""
        query = select(OidcClientRow).order_by(OidcClientRow.created_at, OidcClientRow.client_id)
        with self._reads() as session:
            return [_client(row) for row in session.scalars(query)]


def _client(row: OidcClientRow) -> StoredClient:
    return StoredClient(
        client_id=row.client_id, metadata=row.client_metadata, registration_token_hash=row.registration_token_hash,
        created_at=row.created_at, updated_at=row.updated_at,
    )


# mypy checks here that the class satisfies the port the core depends on.
_check: type[ClientStore] = SqlClientStore
