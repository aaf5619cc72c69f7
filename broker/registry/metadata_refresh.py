"""The identity-provider directory the broker uses: every metadata source, kept fresh in the background.

Trust rules (SAML 2.0 Metadata §2.3.2, §3): a document is used only if it passes its source's checks
(pinned signature, ``validUntil`` in the future); a refresh that fails for any reason (network, signature,
expiry, parse) keeps the last good copy and reports the error; once the last good copy's own ``validUntil``
passes, that source's entities are dropped: expired metadata is not trusted.

Sharing between processes (gunicorn workers on one instance folder): per source the cache folder holds
``<source>.state.json`` (generation, validity, HTTP validators, last error), ``<source>.<generation>.idx``
(the compiled index, see :mod:`broker.registry.idp_index`) and ``<source>.lock``. The process holding the
``fcntl.flock`` on the lock file refreshes and writes a new generation; the others notice the generation
in the state file on their next poll and map the new file. A request only ever reads ``self._snapshot``,
replaced by one assignment, so requests in flight keep the copy they started with.

The refresh runs in a daemon thread per process. The heavy step (parse, verify, compile) runs either in
that thread (default) or, with ``build_in_child=True``, in a freshly spawned child process. Measured with
``bench/metadata_bench.py`` (10,000 entities, 2 cores): ``get()`` p50/p99 stay at about 3/4-5 µs in both
modes while a rebuild runs beside the request thread (lxml and xmlsec release the GIL while they parse and
verify), so either keeps logins flat. The difference is memory: in-thread, the worker's RSS peaks at about
+190 MB for the DOM (XML Signature verification needs the whole tree) and is trimmed back afterwards; in a
child, the worker never grows and the child's peak ends with it, for about 0.7 s of interpreter start-up.
Under gunicorn prefer ``build_in_child=True``; with flock, one process builds per round either way.
"""

from __future__ import annotations

import heapq
import logging
import multiprocessing
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import requests

from broker.registry.idp_entity import IdpEntity, fold
from broker.registry.idp_index import CorruptIndex, IdpIndex, write_index
from broker.registry.idp_metadata import MetadataError
from broker.registry.metadata_cache import (
    CacheFolder,
    DirectorySnapshot,
    SourceState,
    SourceStatus,
    SourceView,
    make_snapshot,
)
from broker.registry.metadata_cache import flock as _flock
from broker.registry.metadata_cache import instant as _instant
from broker.registry.metadata_cache import release_memory as _release_memory
from broker.registry.metadata_cache import (
    stamp as source_stamp,
)
from broker.registry.metadata_signature import (
    MetadataRefused,
    Validity,
)
from broker.registry.metadata_sources import (
    MIN_REFRESH,
    FetchError,
    SourceSpec,
    check_local,
    compile_document,
    fetch,
    load_sources,
)

__all__ = ["IdpDirectory", "SourceStatus"]

log = logging.getLogger(__name__)
_RETRY_AFTER_FAILURE = 600  # seconds, at most (never more often than the source's refresh_interval)


class IdpDirectory:
    """Thread-safe directory of upstream SAML IdPs from ``metadata/saml-idp`` and ``metadata/federations``."""

    def __init__(self, metadata_dir: Path, instance_dir: Path, cache_dir: Path, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), http: requests.Session | None = None,
                 start_refresher: bool = True, poll_interval: float = 10.0, build_in_child: bool = False) -> None:
        self._cache = cache_dir
        self._folder = CacheFolder(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._clock = clock
        self._http = http or requests.Session()
        self._poll = poll_interval
        self._build_in_child = build_in_child
        self._folders = (metadata_dir, instance_dir)
        self._specs, self._config_problems = load_sources(metadata_dir, instance_dir)
        self._work = threading.Lock()  # one refresh at a time in this process
        self._swap = threading.Lock()  # serialises snapshot replacement
        self._snapshot = DirectorySnapshot({}, (), None, 0, ())
        self._stop = threading.Event()
        for spec in self._specs:
            self._refresh(spec, force=False, blocking=True)
        self._own_http = http is None
        self._thread: threading.Thread | None = None
        if start_refresher:
            self._start_thread()
            # A fork (gunicorn --preload) copies no threads: each child starts its own refresher.
            this = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: (d := this()) is not None and d._after_fork())

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._run, name="idp-metadata-refresh", daemon=True)
        self._thread.start()

    def _after_fork(self) -> bool:
        # The parent's threads may have held these at the fork; the copies would stay locked forever.
        self._work, self._swap = threading.Lock(), threading.Lock()
        if self._own_http:
            self._http = requests.Session()  # never share the parent's pooled connections
        if not self._stop.is_set():
            self._start_thread()
        return True

    # -- reading (the request path) -------------------------------------------------------------------------
    def _current(self) -> DirectorySnapshot:
        snapshot = self._snapshot
        if snapshot.first_expiry is not None and self._clock() >= snapshot.first_expiry:
            for view in snapshot.views.values():
                self._adopt(view.spec, view.state)  # drops what expired
            snapshot = self._snapshot
        return snapshot

    def get(self, entity_id: str) -> IdpEntity | None:
        for index in self._current().indexes:
            if (entity := index.get(entity_id)) is not None:
                return entity
        return None

    def search(self, query: str, limit: int = 20) -> list[IdpEntity]:
        """Every word of ``query`` in the display names, entityID or keywords (case and accents ignored),
        in display-name order. An entityID in several sources is shown from the first one, as :meth:`get`."""
        indexes = self._current().indexes
        return list(islice(self._merged(indexes, [ix.search(query, limit) for ix in indexes]), limit))

    def names_page(self, offset: int, limit: int) -> list[IdpEntity]:
        """All identity providers in display-name order, ``limit`` of them from ``offset``."""
        indexes = self._current().indexes
        if len(indexes) == 1:
            return indexes[0].names_page(offset, limit)
        merged = self._merged(indexes, [ix.iter_names() for ix in indexes])
        return list(islice(merged, max(0, offset), max(0, offset) + max(0, limit)))

    @staticmethod
    def _merged(indexes: tuple[IdpIndex, ...], lists: list[Iterable[IdpEntity]]) -> Iterator[IdpEntity]:
        """Merge per-source lists already in display-name order, each entityID from its first source only."""
        def ranked(k: int, entities: Iterable[IdpEntity]) -> Iterator[tuple[str, int, IdpEntity]]:
            return ((fold(e.display_name(None)), k, e) for e in entities)

        merged = heapq.merge(*(ranked(k, entities) for k, entities in enumerate(lists)), key=lambda r: (r[0], r[1]))
        for _, k, entity in merged:
            if not any(entity.entity_id in earlier for earlier in indexes[:k]):
                yield entity

    def __len__(self) -> int:
        return self._current().size

    def problems(self) -> tuple[str, ...]:
        snapshot = self._current()
        lines = list(self._config_problems)
        for view in snapshot.views.values():
            state = view.state
            if view.expired:
                lines.append(f"{view.spec.name}: the last good copy expired at {state.valid_until}; its "
                             "identity providers are not used until a valid copy is fetched")
            if state.last_error:
                lines.append(f"{view.spec.name}: last refresh failed at {state.attempted_at}: {state.last_error}")
            lines.extend(state.problems)
        lines.extend(snapshot.duplicates)
        return tuple(lines)

    def status(self) -> tuple[SourceStatus, ...]:
        return tuple(SourceStatus(
            name=v.spec.name, kind=v.spec.kind, location=v.spec.location, entities=0 if v.expired else len(v.index),
            generation=v.state.generation, loaded_at=_instant(v.state.loaded_at),
            valid_until=_instant(v.state.valid_until), next_refresh=_instant(v.state.next_refresh),
            last_error=v.state.last_error, expired=v.expired, attempted_at=_instant(v.state.attempted_at))
            for v in self._current().views.values())

    def source_entities(self, name: str, query: str, offset: int, limit: int) -> list[IdpEntity] | None:
        """Source ``name``'s own entities in display-name order (only those matching ``query`` when given),
        ``limit`` from ``offset``; None when there is no such source (the console's federation page)."""
        view = self._current().views.get(name)
        if view is None:
            return None
        if view.expired:
            return []
        if query.strip():
            return view.index.search(query, offset + limit)[offset:]
        return view.index.names_page(offset, limit)

    # -- refreshing -----------------------------------------------------------------------------------------
    def refresh_now(self) -> None:
        """Refresh every source now (synchronously). If another process refreshed a source while this one
        waited for the lock, its result is taken instead of fetching again."""
        for spec in self._specs:
            self._refresh(spec, force=True, blocking=True, seen=self._folder.read_state(spec).attempts)

    def refresh_source(self, name: str) -> bool:
        """Refresh source ``name`` now (synchronously), as :meth:`refresh_now` does for all; False when there is no
        such source."""
        spec = next((s for s in self._specs if s.name == name), None)
        if spec is None:
            return False
        self._refresh(spec, force=True, blocking=True, seen=self._folder.read_state(spec).attempts)
        return True

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def rescan(self) -> None:
        """Take up sources added, changed or removed since start-up (a file dropped into ``metadata/saml-idp``,
        a federation's TOML edited): new ones are built, removed ones leave the directory."""
        specs, problems = load_sources(*self._folders)
        if [(s.name, s.fingerprint()) for s in specs] == [(s.name, s.fingerprint()) for s in self._specs] \
                and problems == self._config_problems:
            return
        with self._swap:
            self._specs, self._config_problems = specs, problems
            names = {s.name for s in specs}
            self._snapshot = make_snapshot({k: v for k, v in self._snapshot.views.items() if k in names})
        for spec in specs:
            self._refresh(spec, force=False, blocking=True)

    def _run(self) -> None:
        while not self._stop.wait(self._poll):
            try:
                self.rescan()
            except Exception:  # the refresher must outlive any one bad round
                log.exception("rescanning the metadata sources failed")
            for spec in self._specs:
                if self._stop.is_set():
                    return
                try:
                    self._refresh(spec, force=False, blocking=False)
                except Exception:  # the refresher must outlive any one bad round
                    log.exception("refreshing %s failed", spec.name)

    def _due(self, spec: SourceSpec, state: SourceState, now: datetime, force: bool, seen: int | None) -> bool:
        if state.fingerprint != spec.fingerprint() or state.stamp != source_stamp(spec):
            return True
        if state.generation and not self._folder.index_path(spec, state.generation).is_file():
            return True  # the cache folder was emptied
        if force:
            return seen is None or state.attempts <= seen
        next_refresh = _instant(state.next_refresh)
        return next_refresh is None or now >= next_refresh

    def _refresh(self, spec: SourceSpec, *, force: bool, blocking: bool, seen: int | None = None) -> None:
        state = self._folder.read_state(spec)
        if blocking or self._due(spec, state, self._clock(), force, seen):
            with self._work, _flock(self._folder.paths(spec)[1], blocking) as locked:
                if locked:
                    state = self._folder.read_state(spec)  # another process may have refreshed meanwhile
                    now = self._clock()
                    if self._due(spec, state, now, force, seen):
                        state = replace(self._build(spec, state, now), attempts=state.attempts + 1)
                        self._folder.write_state(spec, state)
        self._adopt(spec, state)

    def _build(self, spec: SourceSpec, state: SourceState, now: datetime) -> SourceState:
        fingerprint, stamp = spec.fingerprint(), source_stamp(spec)
        same_config = state.fingerprint == fingerprint and state.generation > 0
        interval = timedelta(seconds=spec.refresh_interval)
        if state.cache_seconds is not None:
            interval = min(interval, timedelta(seconds=max(state.cache_seconds, MIN_REFRESH)))
        try:
            if spec.kind == "url":
                document = self._folder.index_path(spec, 0).with_suffix(".download")
                conditional = same_config and self._folder.index_path(spec, state.generation).is_file()
                fetched = fetch(spec, self._http, document, etag=state.etag if conditional else None,
                                last_modified=state.last_modified if conditional else None)
                if not fetched.modified:
                    log.info("%s: not modified", spec.name)
                    return replace(state, attempted_at=now.isoformat(), next_refresh=(now + interval).isoformat(),
                                   last_error=None)
                etag, modified = fetched.etag, fetched.last_modified
            else:
                document, etag, modified = check_local(spec), None, None
            generation = state.generation + 1
            count, problems, validity = self._compile(spec, document, now, self._folder.index_path(spec, generation))
        except (MetadataError, MetadataRefused, FetchError, OSError, BrokenProcessPool) as exc:
            log.warning("%s: refresh failed, keeping the last good copy: %s", spec.name, exc)
            retry = now + timedelta(seconds=min(spec.refresh_interval, _RETRY_AFTER_FAILURE))
            failed = replace(state, attempted_at=now.isoformat(), next_refresh=retry.isoformat(),
                             last_error=str(exc), stamp=stamp)
            if same_config:
                return failed
            # A changed configuration (another URL, another pinned certificate) does not vouch for the old copy:
            # an empty generation replaces it (generations only grow, so no process mistakes an old file for it).
            empty = state.generation + 1
            write_index(self._folder.index_path(spec, empty), (), {"source": spec.name})
            return replace(failed, generation=empty, fingerprint=fingerprint, count=0, valid_until=None,
                           cache_seconds=None, etag=None, last_modified=None, problems=())
        cache = validity.cache_duration
        interval = timedelta(seconds=spec.refresh_interval)
        if cache is not None:
            interval = min(interval, max(cache, timedelta(seconds=MIN_REFRESH)))
        log.info("%s: %d identity providers loaded (generation %d)", spec.name, count, generation)
        return SourceState(generation=generation, attempts=state.attempts, fingerprint=fingerprint, stamp=stamp,
                      loaded_at=now.isoformat(),
                      valid_until=None if validity.valid_until is None else validity.valid_until.isoformat(),
                      cache_seconds=None if cache is None else cache.total_seconds(), attempted_at=now.isoformat(),
                      next_refresh=(now + interval).isoformat(), etag=etag, last_modified=modified, count=count,
                      problems=tuple(problems))

    def _compile(self, spec: SourceSpec, document: Path, now: datetime,
                 index_path: Path) -> tuple[int, list[str], Validity]:
        """In this process (then the freed memory is trimmed), or in a fresh spawned child whose peak memory
        (the whole DOM, which XML Signature verification needs) ends with it."""
        try:
            if not self._build_in_child:
                return compile_document(spec, document, now, index_path)
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                return pool.submit(compile_document, spec, document, now, index_path).result(timeout=900)
        finally:
            if spec.kind == "url":
                document.unlink(missing_ok=True)
            if not self._build_in_child:
                _release_memory()

    def _adopt(self, spec: SourceSpec, state: SourceState) -> None:
        """Make ``state`` this process's view of the source (mapping a new generation), then swap the snapshot."""
        with self._swap:
            old = self._snapshot.views.get(spec.name)
            until = _instant(state.valid_until)
            if old is not None and old.state == state and old.expired == (until is not None and self._clock() >= until):
                return  # nothing new
            index = old.index if old is not None and old.state.generation == state.generation else None
            if index is None:
                try:
                    index = IdpIndex.open(self._folder.index_path(spec, state.generation)) if state.generation else None
                except (OSError, CorruptIndex) as exc:
                    log.warning("%s: cannot open generation %d: %s", spec.name, state.generation, exc)
                    index = old.index if old is not None else None
                    state = old.state if old is not None else SourceState()
            valid_until = _instant(state.valid_until)
            expired = valid_until is not None and self._clock() >= valid_until
            view = SourceView(spec, state, index or IdpIndex.empty(), expired)
            views = {s.name: view if s.name == spec.name else self._snapshot.views.get(s.name)
                     for s in self._specs}
            self._snapshot = make_snapshot({k: v for k, v in views.items() if v is not None})
