"""Registering apps and upstream identity providers from the operator console and the admin API (issue 19): the
same registration service as ``broker sp``, ``broker client`` and ``broker upstream``
(``core.party_admin.PartyRegistrations``), with who did it in the audit trail.

A preview changes nothing and is not audited. Every write (an app or upstream added or replaced, a SAML app's
settings changed, an app switched off or on, removed) is a ``REGISTRATION_CHANGED`` record naming the operator
(``by``: "operator <account id> (<roles>)" or "client <client_id>") and the changes, before and after, as the preview
showed them; the registry's own reload adds its record of what
it now serves (``broker.app``), as for files dropped into ``metadata/``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta

from broker.core import errors
from broker.core.admin_scopes import scope_permission
from broker.core.audit import AuditKind
from broker.core.console_records import ConsoleAppPreview
from broker.core.operators import Permission
from broker.core.party_admin import AppApplied, AppEntry, AppKind, AppPreview, PartyRegistrations, RegistrationRefused
from broker.core.pending_records import put_record, take_record
from broker.journeys.context import Browser, Journeys

MAX_REASON = 1000


def apps(j: Journeys) -> Sequence[AppEntry]:
    return service(j).apps()


def preview(j: Journeys, kind: AppKind, document: bytes, settings: Mapping[str, object],
            holds: frozenset[Permission]) -> AppPreview:
    """``holds``: the caller's permissions (a person's roles', a client's scopes'), which bound a client's."""
    shown = service(j).preview(kind, document, settings)
    beyond = _beyond(shown, holds)
    return replace(shown, problems=(*shown.problems, *beyond)) if beyond else shown


def apply(j: Journeys, by: str, kind: AppKind, document: bytes, settings: Mapping[str, object],
          holds: frozenset[Permission]) -> AppApplied:
    """Register the app (``RegistrationRefused``: nothing written); audited per app with its changes."""
    beyond = _beyond(service(j).preview(kind, document, settings), holds)
    if beyond:
        raise RegistrationRefused(beyond)
    applied = service(j).apply(kind, document, settings)
    shown = applied.preview
    for party_id in shown.party_ids:
        verb = "replaced" if shown.replaces else "added"
        _audit(j, party_id, f"{verb} {kind.value} app by {by}: {_changes(shown, party_id)}")
    return applied


def current_settings(j: Journeys, kind: AppKind, party_id: str) -> Mapping[str, object]:
    """A SAML app's operator settings as written (``RegistrationRefused``: no such app)."""
    return service(j).settings(kind, party_id)


def preview_settings(j: Journeys, kind: AppKind, party_id: str, settings: Mapping[str, object],
                     clear: Sequence[str]) -> AppPreview:
    return service(j).preview_settings(kind, party_id, settings, clear)


def apply_settings(j: Journeys, by: str, kind: AppKind, party_id: str, settings: Mapping[str, object],
                   clear: Sequence[str]) -> AppPreview:
    """Change a SAML app's settings as ``broker sp set`` does (``RegistrationRefused``: nothing written); audited
    with who and each changed field, before and after."""
    shown = service(j).apply_settings(kind, party_id, settings, clear)
    for changed in shown.party_ids:
        _audit(j, changed, f"settings of {kind.value} app changed by {by}: {_changes(shown, changed)}")
    return shown


def set_enabled(j: Journeys, by: str, kind: AppKind, party_id: str, enabled: bool) -> AppPreview:
    changed = service(j).set_enabled(kind, party_id, enabled)
    _audit(j, party_id, f"{'enabled' if enabled else 'disabled'} {kind.value} app by {by}")
    return changed


def remove(j: Journeys, by: str, kind: AppKind, party_id: str) -> None:
    service(j).remove(kind, party_id)
    _audit(j, party_id, f"removed {kind.value} app by {by}")


def _beyond(shown: AppPreview, holds: frozenset[Permission]) -> tuple[str, ...]:
    """An automation client registered from the console or the API holds no admin permission its registrar does
    not hold: else an ``operator`` (manage-parties) would register a client for ``admin:look-up-citizens`` and
    read citizens' accounts through it, a right its role does not give (least privilege; the command line, on the
    server, registers any)."""
    return tuple(f"the client would be given {scope}, which you do not hold yourself: only someone who holds a "
                 "permission may give it to a client" for scope in shown.admin_scopes
                 if scope_permission(scope) not in holds)


def service(j: Journeys) -> PartyRegistrations:
    if j.apps is None:
        raise errors.NotAnOperator(detail="app registration is not wired")
    return j.apps


def _changes(shown: AppPreview, party_id: str) -> str:
    changes = "; ".join(f"{c.field}: {c.before or '-'} -> {c.after or '-'}"
                        for c in shown.changes if c.party == party_id)
    return changes or "no change"


def _audit(j: Journeys, party_id: str, reason: str) -> None:
    j.audit(AuditKind.REGISTRATION_CHANGED, downstream=party_id[:1024], reason=reason[:MAX_REASON])


#: how long a console preview waits for its "Apply"
PREVIEW_LIFETIME = timedelta(minutes=30)


def keep_preview(j: Journeys, browser: Browser, preview: ConsoleAppPreview) -> str:
    """Keep what an operator previewed, bound to this browser: "Apply" registers exactly it, never a second
    upload. The handle for the form."""
    handle = put_record(j.pending, preview, j.now() + PREVIEW_LIFETIME)
    browser.bind(handle)
    return handle


def take_preview(j: Journeys, browser: Browser, account_id: str, handle: str) -> ConsoleAppPreview | None:
    """The preview under ``handle`` if this browser and this operator made it (used once), else None."""
    record = take_record(j.pending, ConsoleAppPreview, handle, j.now()) if browser.unbind(handle) else None
    return record if record is not None and record.account_id == account_id else None
