"""Recording security events from the web layer into the audit log (``broker.core.audit``)."""

from __future__ import annotations

from flask import current_app

from broker.core.audit import AuditEvent, AuditKind
from broker.core.audit_throttle import AuditThrottle
from broker.web.services import services


def record(kind: AuditKind, *, account_id: str | None = None, upstream: str | None = None,
           downstream: str | None = None, reason: str | None = None, reference: str | None = None) -> None:
    svc = services()
    svc.audit.record(AuditEvent(kind, svc.clock.now(), account_id=account_id, upstream=upstream,
                                downstream=downstream, reason=reason, reference=reference))


def record_throttled(kind: AuditKind, reason: str, *, downstream: str | None = None,
                     reference: str | None = None) -> None:
    """An event anyone can cause without credentials (a 429, an unknown client): at most one record per
    (kind, reason, downstream) and window (``[limits] audit_window_seconds``), saying how many were left out
    before it (``broker.core.audit_throttle``). ``reason`` and ``downstream`` must be the broker's own words."""
    throttle: AuditThrottle = current_app.extensions["broker_audit_throttle"]
    svc = services()
    left_out = throttle.admit(f"{kind.value} {reason} {downstream}", svc.clock.now())
    if left_out is None:
        return
    if left_out:
        reason = f"{reason} ({left_out} more since the previous record)"
    record(kind, downstream=downstream, reason=reason, reference=reference)
