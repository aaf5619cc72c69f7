"""Registering apps from the operator console and the admin API (issue 19): the same registration service as
``broker sp`` and ``broker client`` (``core.party_admin.PartyRegistrations``), with who did it in the audit trail.

A preview changes nothing and is not audited. Every write (an app added or replaced, switched off or on, removed)
is a ``REGISTRATION_CHANGED`` record naming the operator (``by``: "operator <account id>" or "client <client_id>")
and the changes, before and after, as the preview showed them; the registry's own reload adds its record of what
it now serves (``broker.app``), as for files dropped into ``metadata/``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.party_admin import AppApplied, AppEntry, AppKind, AppPreview, PartyRegistrations
from broker.journeys.context import Journeys

MAX_REASON = 1000


def apps(j: Journeys) -> Sequence[AppEntry]:
    return service(j).apps()


def preview(j: Journeys, kind: AppKind, document: bytes, settings: Mapping[str, object]) -> AppPreview:
    return service(j).preview(kind, document, settings)


def apply(j: Journeys, by: str, kind: AppKind, document: bytes, settings: Mapping[str, object]) -> AppApplied:
    """Register the app (``RegistrationRefused``: nothing written); audited per app with its changes."""
    applied = service(j).apply(kind, document, settings)
    shown = applied.preview
    for party_id in shown.party_ids:
        changes = "; ".join(f"{c.field}: {c.before or '-'} -> {c.after or '-'}"
                            for c in shown.changes if c.party == party_id)
        verb = "replaced" if shown.replaces else "added"
        _audit(j, party_id, f"{verb} {kind.value} app by {by}: {changes or 'no change'}")
    return applied


def set_enabled(j: Journeys, by: str, kind: AppKind, party_id: str, enabled: bool) -> AppPreview:
    changed = service(j).set_enabled(kind, party_id, enabled)
    _audit(j, party_id, f"{'enabled' if enabled else 'disabled'} {kind.value} app by {by}")
    return changed


def remove(j: Journeys, by: str, kind: AppKind, party_id: str) -> None:
    service(j).remove(kind, party_id)
    _audit(j, party_id, f"removed {kind.value} app by {by}")


def service(j: Journeys) -> PartyRegistrations:
    if j.apps is None:
        raise errors.NotAnOperator(detail="app registration is not wired")
    return j.apps


def _audit(j: Journeys, party_id: str, reason: str) -> None:
    j.audit(AuditKind.REGISTRATION_CHANGED, downstream=party_id[:1024], reason=reason[:MAX_REASON])
