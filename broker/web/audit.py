"""Recording security events from the web layer into the audit log (``broker.core.audit``)."""

from __future__ import annotations

from broker.core.audit import AuditEvent, AuditKind
from broker.registry import Snapshot
from broker.web.services import services


def record(kind: AuditKind, *, account_id: str | None = None, upstream: str | None = None,
           downstream: str | None = None, reason: str | None = None, reference: str | None = None) -> None:
    svc = services()
    svc.audit.record(AuditEvent(kind, svc.clock.now(), account_id=account_id, upstream=upstream,
                                downstream=downstream, reason=reason, reference=reference))


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
