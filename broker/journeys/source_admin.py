"""Adding and removing IdP metadata sources from the operator console and the admin API (issue 19; README "SAML
identity providers and federations"): an IdP metadata file (``metadata/saml-idp``, optionally pinned to its
signer's certificate) or a federation feed (``metadata/federations``, an https URL and its pinned certificate),
through the registry's ``core.source_admin.MetadataSourceFiles``.

A preview changes nothing and is not audited. Every add, replacement and removal is a ``REGISTRATION_CHANGED``
record naming the source (``upstream``), who did it (``by``: "operator <id> (<roles>)", "client <id>") and
the changes, before and after, as the preview showed them. The web layer checks the permission
(``manage-parties``) and, for people, a recent sign-in.
"""

from __future__ import annotations

import base64
import json

from broker.core import errors
from broker.core.audit import AuditKind
from broker.core.console_records import ConsoleAppPreview
from broker.core.pending_records import put_record, take_record
from broker.core.source_admin import MetadataSourceFiles, SourceDraft, SourceKind, SourcePreview, SourceRemoved
from broker.journeys.app_admin import MAX_REASON, PREVIEW_LIFETIME
from broker.journeys.context import Browser, Journeys

#: the kind of ``ConsoleAppPreview`` that holds a metadata source's draft
RECORD_KIND = "metadata-source"


def preview(j: Journeys, draft: SourceDraft) -> SourcePreview:
    return service(j).preview(draft)


def apply(j: Journeys, by: str, draft: SourceDraft) -> SourcePreview:
    """Write the source (``RegistrationRefused``: nothing written); audited with who and what changed."""
    shown = service(j).apply(draft)
    changes = "; ".join(f"{c.field}: {c.before or '-'} -> {c.after or '-'}" for c in shown.changes) or "no change"
    verb = "replaced" if shown.replaces else "added"
    _audit(j, shown.name, f"{verb} {draft.kind.value} source by {by}: {changes}; files {', '.join(shown.files)}")
    return shown


def remove(j: Journeys, by: str, kind: SourceKind, name: str) -> SourceRemoved:
    """Delete the source's files (``RegistrationRefused``: no such source); audited with who and the files."""
    removed = service(j).remove(kind, name)
    _audit(j, removed.name, f"removed {kind.value} source by {by}: files {', '.join(removed.files)}")
    return removed


def service(j: Journeys) -> MetadataSourceFiles:
    if j.metadata_files is None:
        raise errors.NotAnOperator(detail="metadata sources are not wired")
    return j.metadata_files


def _audit(j: Journeys, name: str, reason: str) -> None:
    j.audit(AuditKind.REGISTRATION_CHANGED, upstream=name[:255], reason=reason[:MAX_REASON])


def keep_preview(j: Journeys, browser: Browser, account_id: str, draft: SourceDraft) -> str:
    """Keep the draft an operator previewed, bound to this browser and operator: "Apply" writes exactly it."""
    record = ConsoleAppPreview(account_id, RECORD_KIND, _encode(draft), "{}")
    handle = put_record(j.pending, record, j.now() + PREVIEW_LIFETIME)
    browser.bind(handle)
    return handle


def take_preview(j: Journeys, browser: Browser, account_id: str, handle: str) -> SourceDraft | None:
    """The draft under ``handle`` if this browser and this operator previewed it (used once), else None."""
    record = take_record(j.pending, ConsoleAppPreview, handle, j.now()) if browser.unbind(handle) else None
    if record is None or record.account_id != account_id or record.kind != RECORD_KIND:
        return None
    return _decode(record.document)


def _bytes(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _encode(draft: SourceDraft) -> str:
    """The draft as JSON, the document and certificate in base64 (byte for byte: an XML file's encoding is its
    own)."""
    return json.dumps({"kind": draft.kind.value, "name": draft.name, "document": _bytes(draft.document),
                       "certificate": _bytes(draft.certificate), "url": draft.url,
                       "refresh_interval": draft.refresh_interval})


def _decode(text: str) -> SourceDraft | None:
    try:
        raw = json.loads(text)
        return SourceDraft(SourceKind(raw["kind"]), str(raw["name"]),
                           None if raw["document"] is None else base64.b64decode(raw["document"]),
                           None if raw["certificate"] is None else base64.b64decode(raw["certificate"]),
                           raw["url"], raw["refresh_interval"])
    except (ValueError, KeyError, TypeError):
        return None
