"""The IdP metadata sources as the operator console sees them (issue 19; README "SAML identity providers and
federations", "Operator console"): each source (a file in ``metadata/saml-idp`` or a federation feed in
``metadata/federations``), what it holds, how its last refresh went, and "refresh now".

The adapter is the registry's IdP directory (``broker.registry.metadata_admin``); a refresh asked here is the one
the background refresher runs, so its trust rules hold: a failed refresh keeps the last good copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

#: at most this many entities are listed per page of a source
ENTITY_PAGE = 50


@dataclass(frozen=True)
class SourceReport:
    """One metadata source now. ``loaded_at`` is the last good copy's time, ``attempted_at`` the last try's."""

    name: str
    kind: str  # "url" or "file"
    location: str
    entities: int
    valid_until: datetime | None
    loaded_at: datetime | None
    attempted_at: datetime | None
    next_refresh: datetime | None
    last_error: str | None
    expired: bool


@dataclass(frozen=True)
class EntityRow:
    entity_id: str
    display_name: str


@dataclass(frozen=True)
class RefreshResult:
    """What "refresh now" did: ``finished`` False when it still runs after the wait (the page says so)."""

    source: SourceReport
    finished: bool


class UnknownSource(LookupError):
    """No metadata source of that name."""


class MetadataSources(Protocol):
    def sources(self) -> tuple[SourceReport, ...]: ...

    def problems(self) -> tuple[str, ...]:
        """What ``broker metadata sources`` reports as problems (configuration, expiry, failed refreshes)."""
        ...

    def entities(self, name: str, query: str, offset: int, limit: int) -> tuple[EntityRow, ...]:
        """``limit`` entities of source ``name`` from ``offset`` in display-name order, only those matching
        ``query`` (every word, in names, entity id or keywords) when given; ``UnknownSource``."""
        ...

    def refresh(self, name: str) -> RefreshResult:
        """Refresh source ``name`` now, as the background does, waiting a bounded time; ``UnknownSource``."""
        ...
