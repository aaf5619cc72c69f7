"""The state the IdP directory's processes share through its cache folder (``broker.registry.metadata_refresh``).

Per source the folder holds ``<source>.state.json`` (generation, validity, HTTP validators, last error; written
atomically), ``<source>.<generation>.idx`` (the compiled index, :mod:`broker.registry.idp_index`; older
generations are removed once a newer one is current, and processes that mapped them keep their mapping) and
``<source>.lock`` (the ``fcntl.flock`` that lets one process refresh a source at a time). A process's own view
is a :class:`DirectorySnapshot`, replaced by one assignment.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import gc
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from broker.registry.idp_index import IdpIndex
from broker.registry.metadata_signature import parse_instant
from broker.registry.metadata_sources import SourceSpec

__all__ = ["CacheFolder", "DirectorySnapshot", "SourceState", "SourceStatus", "SourceView", "flock", "instant",
           "make_snapshot", "release_memory", "stamp"]


@dataclass(frozen=True)
class SourceStatus:
    name: str
    kind: str
    location: str
    entities: int
    generation: int
    loaded_at: datetime | None
    valid_until: datetime | None
    next_refresh: datetime | None
    last_error: str | None
    expired: bool
    #: the last refresh tried (successful or not); ``loaded_at`` is the last good copy's
    attempted_at: datetime | None = None


@dataclass(frozen=True)
class SourceState:
    """What every process knows of one source, in ``<source>.state.json``; instants as ISO 8601 text."""

    generation: int = 0
    attempts: int = 0  # refresh rounds done by any process (refresh_now uses it to skip a round just done)
    fingerprint: str = ""
    stamp: str = ""  # a file source's mtime and size when it was read
    loaded_at: str | None = None
    valid_until: str | None = None
    cache_seconds: float | None = None
    attempted_at: str | None = None
    next_refresh: str | None = None
    last_error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    count: int = 0
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceView:
    spec: SourceSpec
    state: SourceState
    index: IdpIndex
    expired: bool


@dataclass(frozen=True)
class DirectorySnapshot:
    views: dict[str, SourceView]
    indexes: tuple[IdpIndex, ...]  # in source order, expired ones left out
    first_expiry: datetime | None
    size: int
    duplicates: tuple[str, ...]


def instant(text: str | None) -> datetime | None:
    return None if text is None else parse_instant(text)


def release_memory() -> None:
    """Hand the freed DOM back to the OS: glibc keeps a freed heap mapped otherwise. A no-op elsewhere."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


@contextlib.contextmanager
def flock(path: Path, blocking: bool) -> Iterator[bool]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


class CacheFolder:
    """The files of each source in the shared cache folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def paths(self, spec: SourceSpec) -> tuple[Path, Path]:
        """(state file, lock file) of ``spec``."""
        safe = spec.name.replace("/", "__")
        return self.folder / f"{safe}.state.json", self.folder / f"{safe}.lock"

    def index_path(self, spec: SourceSpec, generation: int) -> Path:
        return self.folder / f"{spec.name.replace('/', '__')}.{generation}.idx"

    def read_state(self, spec: SourceSpec) -> SourceState:
        try:
            raw: dict[str, Any] = json.loads(self.paths(spec)[0].read_text())
            raw["problems"] = tuple(raw.get("problems", ()))
            return SourceState(**raw)
        except (OSError, ValueError, TypeError):
            return SourceState()

    def write_state(self, spec: SourceSpec, state: SourceState) -> None:
        path = self.paths(spec)[0]
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=self.folder)
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(state), fh)
        os.replace(tmp, path)
        safe = spec.name.replace("/", "__")
        for old in self.folder.glob(f"{safe}.*.idx"):
            generation = old.name[len(safe) + 1:-len(".idx")]
            if generation.isdigit() and int(generation) < state.generation:
                old.unlink(missing_ok=True)  # processes that mapped it keep their mapping


def stamp(spec: SourceSpec) -> str:
    """A file source's mtime and size (a changed file is read again); empty for URL sources."""
    if spec.kind != "file":
        return ""
    try:
        st = os.stat(spec.location)
    except OSError:
        return "missing"
    return f"{st.st_mtime_ns}:{st.st_size}"


def make_snapshot(views: dict[str, SourceView]) -> DirectorySnapshot:
    """The process's view of all sources: the live indexes in source order, the first expiry, duplicates."""
    live = [v for v in views.values() if not v.expired]
    seen: set[str] = set()
    duplicates = []
    for view in live:
        ids = view.index.entity_ids()
        clash = seen.intersection(ids)
        if clash:
            duplicates.append(f"{view.spec.name}: {len(clash)} entityIDs also come from an earlier source, "
                              f"which is used (e.g. {sorted(clash)[0]!r})")
        seen.update(ids)
    expiries = [t for v in live if (t := instant(v.state.valid_until)) is not None]
    return DirectorySnapshot(views, tuple(v.index for v in live), min(expiries, default=None), len(seen),
                             tuple(duplicates))
