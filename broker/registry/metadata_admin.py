"""The IdP directory as the console's ``MetadataSources`` port (issue 19; ``broker.core.federations``; README "SAML
identity providers and federations"): the sources ``broker metadata sources`` reports, one source's entities, and
"refresh now", which runs the directory's own refresh of that source (the one the background refresher runs).

A refresh is bounded for the request that asked: it runs in a thread of its own, and the request waits at most
``wait`` for it. One still running after that goes on (a large feed may take a minute to fetch and verify); the
page says so and shows the outcome when reloaded. A second "refresh now" of a source while one runs waits for
that one instead of starting another. Other processes of the instance take the new copy up on their next poll
of the shared cache folder (``broker.registry.metadata_refresh``).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from broker.core.federations import EntityRow, MetadataSources, RefreshResult, SourceReport, UnknownSource
from broker.registry.metadata_refresh import IdpDirectory, SourceStatus

log = logging.getLogger(__name__)
#: the furthest into a search's results a page may start (a search scans the source's compiled index)
MAX_SEARCH_OFFSET = 5000


def _report(status: SourceStatus) -> SourceReport:
    return SourceReport(name=status.name, kind=status.kind, location=status.location, entities=status.entities,
                        valid_until=status.valid_until, loaded_at=status.loaded_at, attempted_at=status.attempted_at,
                        next_refresh=status.next_refresh, last_error=status.last_error, expired=status.expired)


class DirectorySources:
    def __init__(self, directory: IdpDirectory, wait: timedelta = timedelta(seconds=20)) -> None:
        self._directory = directory
        self._wait = wait.total_seconds()
        self._lock = threading.Lock()
        self._running: dict[str, threading.Thread] = {}

    def sources(self) -> tuple[SourceReport, ...]:
        return tuple(_report(status) for status in self._directory.status())

    def problems(self) -> tuple[str, ...]:
        return self._directory.problems()

    def _source(self, name: str) -> SourceReport:
        found = next((s for s in self.sources() if s.name == name), None)
        if found is None:
            raise UnknownSource(name)
        return found

    def entities(self, name: str, query: str, offset: int, limit: int) -> tuple[EntityRow, ...]:
        if query.strip() and offset > MAX_SEARCH_OFFSET:
            return ()
        found = self._directory.source_entities(name, query, max(0, offset), max(0, limit))
        if found is None:
            raise UnknownSource(name)
        return tuple(EntityRow(e.entity_id, e.display_name("en")) for e in found)

    def refresh(self, name: str) -> RefreshResult:
        self._source(name)
        with self._lock:
            thread = self._running.get(name)
            if thread is None or not thread.is_alive():
                thread = threading.Thread(target=self._run, args=(name,), name=f"refresh {name}", daemon=True)
                self._running[name] = thread
                thread.start()
        thread.join(self._wait)
        return RefreshResult(self._source(name), not thread.is_alive())

    def _run(self, name: str) -> None:
        try:
            self._directory.refresh_source(name)
        except Exception:  # a thread's failure would otherwise vanish; the directory keeps the last good copy
            log.exception("refreshing %s on request failed", name)


_check: type[MetadataSources] = DirectorySources
