"""The SQL audit log appends what it is given, exactly, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from broker.core.audit import AuditEvent, AuditKind
from broker.storage import SqlAuditLog
from broker.storage.tables import AuditEventRow

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_events_are_appended_in_order_with_their_fields(engine: Engine) -> None:
    log = SqlAuditLog(engine)
    log.record(AuditEvent(AuditKind.LOGIN_SUCCEEDED, AT, account_id="a-1", upstream="op", downstream="sp",
                          reason="sso"))
    log.record(AuditEvent(AuditKind.RATE_LIMITED, AT, reason="x" * 5000, reference="ABC123"))

    with engine.connect() as connection:
        rows = connection.execute(select(AuditEventRow).order_by(AuditEventRow.id)).all()
    assert [(r.kind, r.account_id, r.upstream, r.downstream) for r in rows] == [
        ("login-succeeded", "a-1", "op", "sp"), ("rate-limited", None, None, None)]
    assert rows[0].at == AT and rows[1].reference == "ABC123"
    assert len(rows[1].reason) == 1024  # bounded: an attacker-chosen reason cannot bloat the log
