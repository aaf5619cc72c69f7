"""Consent policy set-up and reading the consent audit trail, shared by the flow tests."""

from __future__ import annotations

from sqlalchemy import create_engine, select

from broker.storage.tables import AuditEventRow
from tests.flows.federation import Federation


def policy(federation: Federation, text: str) -> None:
    (federation.folder / "metadata" / "release-policy.toml").write_text(text)
    snapshot = federation.app.extensions["broker"].registry.reload()
    assert not snapshot.problems, snapshot.problems


def audit_kinds(federation: Federation) -> list[str]:
    engine = create_engine(federation.database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(select(AuditEventRow.kind).order_by(AuditEventRow.id)).scalars())
    finally:
        engine.dispose()
