"""Recording security events from the web layer into the audit log (``broker.core.audit``)."""

from __future__ import annotations

from flask import current_app

from broker.core.audit import AuditEvent, AuditKind
from broker.core.audit_throttle import AuditThrottle
from broker.registry import Snapshot
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


def registration_changes(before: Snapshot, after: Snapshot) -> list[str]:
    """What a registry reload added and removed, one line each ("added saml-sp https://app...")."""
    lines = []
    for kind, old, new in (("saml-sp", set(before.saml.sps), set(after.saml.sps)),
                           ("upstream", set(before.upstreams), set(after.upstreams)),
                           ("oidc-client", set(before.oidc_clients), set(after.oidc_clients))):
        lines += [f"added {kind} {name}" for name in sorted(new - old)]
        lines += [f"removed {kind} {name}" for name in sorted(old - new)]
        lines += [f"changed {kind} {name}" for name in sorted(old & new)
                  if _changed(kind, name, before, after)]
    return lines


def _changed(kind: str, name: str, before: Snapshot, after: Snapshot) -> bool:
    if kind == "saml-sp":
        return before.saml.sps[name] != after.saml.sps[name]
    if kind == "oidc-client":
        return before.oidc_clients[name] != after.oidc_clients[name]
    return before.upstreams[name] != after.upstreams[name]
