"""Adding and removing IdP metadata sources from the operator console and the admin API (issue 19; README
"SAML identity providers and federations"), as the journeys see it.

Two kinds of source:

- an **IdP metadata file**, ``metadata/saml-idp/<name>.xml`` (one ``EntityDescriptor`` or an ``EntitiesDescriptor``
  aggregate, SAML 2.0 Metadata §2.3.1-2.3.2), optionally with the signer's certificate as the sidecar
  ``<name>.pem``: the file must then carry a valid enveloped signature by it (SAML 2.0 Metadata §3);
- a **federation feed**, ``metadata/federations/<name>.toml``: an https URL, the pinned signing certificate the
  aggregate must be signed with (written to ``certs/federations/<name>.pem`` of the instance) and the refresh
  interval. A ``file`` source (a document already on the server) is not offered here: it is the server's own.

The port ``MetadataSourceFiles`` is the registry's (``broker.registry.source_registrations``): a preview checks
the submission exactly as the IdP directory will load it (the same parser, schema, signature, ``validUntil`` and
source-file checks) and writes nothing; applying checks again and writes the files in one step each; the directory
then rescans. Nothing here parses XML, TOML or certificates.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from broker.core.federations import EntityRow
from broker.core.party_admin import Change as Change
from broker.core.party_admin import RegistrationRefused as RegistrationRefused

#: the most bytes of metadata or certificate a person may submit (the web layer caps a request lower)
MAX_SOURCE_DOCUMENT = 1_000_000
#: at most this many of the entities found are listed in a preview (the count is always given)
PREVIEW_ENTITIES = 50


class SourceKind(StrEnum):
    IDP_FILE = "idp-file"  # metadata/saml-idp/<name>.xml (+ <name>.pem)
    FEDERATION = "federation"  # metadata/federations/<name>.toml (+ certs/federations/<name>.pem)

    @property
    def folder(self) -> str:
        """The folder part of the directory's source name (``saml-idp/<name>``, ``federation/<name>``)."""
        return "saml-idp" if self is SourceKind.IDP_FILE else "federation"


@dataclass(frozen=True)
class SourceDraft:
    """What an operator submits. ``document`` (the metadata XML) for an IdP file only; ``certificate`` (PEM) is
    optional for an IdP file (then its signature is required) and required for a federation; ``url`` and
    ``refresh_interval`` (seconds, None: the default) for a federation only."""

    kind: SourceKind
    name: str
    document: bytes | None = None
    certificate: bytes | None = None
    url: str | None = None
    refresh_interval: int | None = None

    @property
    def source_name(self) -> str:
        return f"{self.kind.folder}/{self.name}"


@dataclass(frozen=True)
class SourcePreview:
    """What adding the draft would do. ``problems``: why the directory would not load it (then nothing can be
    applied); ``notes``: what loads but deserves a look (an entity skipped, a signature not checked);
    ``entities``: the first ``PREVIEW_ENTITIES`` identity providers found of ``entity_count`` (a federation's are
    known once fetched); ``facts``: what was read (certificate fingerprint and expiry, validUntil, URL);
    ``changes`` against the source of that name today; ``files`` written, relative to the instance folder."""

    kind: SourceKind
    name: str
    files: tuple[str, ...]
    problems: tuple[str, ...]
    notes: tuple[str, ...] = ()
    entities: tuple[EntityRow, ...] = ()
    entity_count: int = 0
    facts: tuple[tuple[str, str], ...] = ()
    changes: tuple[Change, ...] = ()
    #: a source of that name exists today (applying replaces it)
    replaces: bool = False


@dataclass(frozen=True)
class SourceRemoved:
    """``files`` deleted, relative to the instance folder."""

    kind: SourceKind
    name: str
    files: tuple[str, ...]


class MetadataSourceFiles(Protocol):
    def preview(self, draft: SourceDraft) -> SourcePreview:
        """Check ``draft`` as the IdP directory will load it, against the source of that name today; never raises,
        writes nothing."""
        ...

    def apply(self, draft: SourceDraft) -> SourcePreview:
        """Preview again and write the files, then have the directory take them up (waiting a bounded time);
        ``RegistrationRefused`` with nothing written when the preview has problems."""
        ...

    def remove(self, kind: SourceKind, name: str) -> SourceRemoved:
        """Delete the source's files (the directory drops its entities); ``RegistrationRefused`` when none."""
        ...
