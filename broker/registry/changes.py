"""What a registry reload changed, for the operator's audit log (``broker.app`` records one line per change)."""

from __future__ import annotations

from broker.registry.registry import Snapshot


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
