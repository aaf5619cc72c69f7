"""The IdP metadata sources at the operator console and the admin API (issue 19; README "SAML identity providers
and federations", "Operator console"): each source with its entity count, validity, last refresh and error,
one source's entities a page at a time (searchable by name), and "refresh now".

"Refresh now" (``manage-parties``; the web layer checks the permission) runs the refresh the background runs,
for one source, waiting a bounded time (``MetadataSources.refresh``); a refresh that fails keeps the last good copy
and shows its error. Each one is an audit record (``METADATA_REFRESHED``) naming who asked and the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.core.audit import AuditKind
from broker.core.federations import ENTITY_PAGE, EntityRow, MetadataSources, RefreshResult, SourceReport
from broker.core.federations import UnknownSource as UnknownSource
from broker.journeys.context import Journeys

#: the furthest page of a source's entities shown (a federation of 10,000 IdPs is searched, not paged through)
MAX_PAGE = 200


class Unavailable(LookupError):
    """This broker has no IdP directory wired (no console)."""


@dataclass(frozen=True)
class EntityPage:
    source: SourceReport
    query: str
    page: int
    rows: tuple[EntityRow, ...]
    more: bool


def _port(j: Journeys) -> MetadataSources:
    if j.metadata_sources is None:
        raise Unavailable("no IdP metadata directory")
    return j.metadata_sources


def sources(j: Journeys) -> tuple[SourceReport, ...]:
    return _port(j).sources()


def problems(j: Journeys) -> tuple[str, ...]:
    return _port(j).problems()


def source(j: Journeys, name: str) -> SourceReport:
    found = next((s for s in sources(j) if s.name == name), None)
    if found is None:
        raise UnknownSource(name)
    return found


def entities(j: Journeys, name: str, query: str, page: int = 0) -> EntityPage:
    """Page ``page`` (from 0, at most ``MAX_PAGE``) of source ``name``'s entities matching ``query``."""
    page = min(max(0, page), MAX_PAGE)
    found = source(j, name)
    rows = _port(j).entities(name, query.strip()[:200], page * ENTITY_PAGE, ENTITY_PAGE + 1)
    return EntityPage(found, query.strip()[:200], page, rows[:ENTITY_PAGE], len(rows) > ENTITY_PAGE)


def refresh(j: Journeys, name: str, by: str) -> RefreshResult:
    """Refresh source ``name`` now; ``by`` (``operator <id> (<roles>)``, ``client <id>``) goes to the audit record."""
    result = _port(j).refresh(name)
    state = result.source
    outcome = ("still running" if not result.finished
               else f"failed, the last good copy kept: {state.last_error}" if state.last_error
               else f"{state.entities} entities")
    j.audit(AuditKind.METADATA_REFRESHED, upstream=name[:255], reason=f"refresh now by {by}: {outcome}"[:1000])
    return result
