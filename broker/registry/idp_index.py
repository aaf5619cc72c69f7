"""The compiled identity-provider index: one file per metadata source, shared by processes through ``mmap``.

Layout (little-endian; sections 8-byte aligned)::

    header   MAGIC, marshal version, entity count, then (offset, length) of each section
    records  marshal of each entity's tuple (:func:`broker.registry.idp_entity.to_record`), in document order
    meta     marshal of a dict[str, str] (source name...)
    ids      marshal of the tuple of entityIDs, in display-name order
    offsets  2 x count uint64: entity i is records[offsets[2i]:offsets[2i] + offsets[2i + 1]]
    starts   count + 1 uint64: line i of the search text is search[starts[i]:starts[i + 1] - 1]
    search   one line per entity, folded (:func:`fold`): display names, entityID, keywords; UTF-8

Entities are numbered in folded display-name order, so a page of names is a slice and search hits come out in name
order. The file is written to a temporary name and renamed (``os.replace``), so a reader sees the old file
or the new one, never half of one. Readers ``mmap`` it read-only: gunicorn workers share one copy through
the page cache; each keeps only the entityID -> record number dict.

The cache folder is trusted: it must be writable by the broker alone (records are loaded with ``marshal``,
which is safe from code execution on load but not built for hostile input).
"""

from __future__ import annotations

import bisect
import marshal
import mmap
import os
import struct
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from broker.registry.idp_entity import IdpEntity, fold, from_record, to_record

__all__ = ["CorruptIndex", "IdpIndex", "IndexSummary", "write_index"]

MAGIC: Final = b"BRKIDPX1"
_HEADER: Final = struct.Struct("<8sII" + "QQ" * 6)
_SECTIONS: Final = ("meta", "ids", "offsets", "records", "starts", "search")
_MAX_QUERY_WORDS: Final = 8


class CorruptIndex(ValueError):
    """The file is not a compiled index of this version (or is truncated); rebuild it."""


def _search_line(entity: IdpEntity) -> str:
    parts = [text for _, text in entity.display_names] + [entity.entity_id] + [k for _, k in entity.keywords]
    return fold(" ".join(parts)).replace("\n", " ")


def _padding(size: int) -> bytes:
    return b"\0" * (-size % 8)


@dataclass(frozen=True)
class IndexSummary:
    count: int
    duplicates: dict[str, int]  # entityIDs given more than once (left out of the index) and how often


def write_index(path: Path, entities: Iterable[IdpEntity], meta: Mapping[str, str]) -> IndexSummary:
    """Write the index of ``entities`` to ``path`` atomically. Each record is written as it comes, so only a
    small row per entity stays in memory. An entityID given twice is left out entirely (both copies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w+b") as fh:
            fh.write(b"\0" * _HEADER.size)
            rows: list[tuple[str, str, int, int, bytes]] = []
            counts: Counter[str] = Counter()
            position = 0
            for entity in entities:
                record = marshal.dumps(to_record(entity))  # type: ignore[arg-type]
                fh.write(record)
                rows.append((fold(entity.display_name(None)), entity.entity_id, position, len(record),
                             _search_line(entity).encode("utf-8") + b"\n"))
                counts[entity.entity_id] += 1
                position += len(record)
            rows = sorted(row for row in rows if counts[row[1]] == 1)
            fh.write(_padding(position))
            spans = {"records": (_HEADER.size, position)}
            starts = array("Q", [0])
            for row in rows:
                starts.append(starts[-1] + len(row[4]))
            bodies = {
                "meta": marshal.dumps(dict(meta)), "ids": marshal.dumps(tuple(row[1] for row in rows)),
                "offsets": array("Q", [n for row in rows for n in row[2:4]]).tobytes(), "starts": starts.tobytes(),
                "search": b"".join(row[4] for row in rows),
            }
            for name, body in bodies.items():
                spans[name] = (fh.tell(), len(body))
                fh.write(body)
                fh.write(_padding(len(body)))
            fh.seek(0)
            fh.write(_HEADER.pack(MAGIC, marshal.version, len(rows), *(n for name in _SECTIONS for n in spans[name])))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return IndexSummary(len(rows), {eid: n for eid, n in counts.items() if n > 1})


class IdpIndex:
    """A read-only view of one compiled file. Cheap to keep many; never closed while a reader may use it
    (the mapping goes away with the last reference)."""

    __slots__ = ("_ids", "_mm", "_offsets", "_records", "_search", "_search_end", "_starts", "meta")

    def __init__(self, mm: mmap.mmap | None, data: memoryview) -> None:
        self._mm = mm
        if len(data) == 0:  # the empty index
            self.meta: dict[str, str] = {}
            self._ids: dict[str, int] = {}
            self._offsets, self._starts = memoryview(array("Q")), memoryview(array("Q", [0]))
            self._records, self._search, self._search_end = data, 0, 0
            return
        if len(data) < _HEADER.size:
            raise CorruptIndex("truncated index")
        magic, version, count, *spans = _HEADER.unpack_from(data)
        if magic != MAGIC or version != marshal.version:
            raise CorruptIndex("not an index of this version")
        sections = {name: (spans[2 * i], spans[2 * i + 1]) for i, name in enumerate(_SECTIONS)}
        if any(offset + length > len(data) for offset, length in sections.values()):
            raise CorruptIndex("truncated index")

        def section(name: str) -> memoryview:
            offset, length = sections[name]
            return data[offset:offset + length]

        self.meta = marshal.loads(section("meta"))  # noqa: S302 - our own file, trusted folder
        ids = marshal.loads(section("ids"))  # noqa: S302
        self._ids = {entity_id: i for i, entity_id in enumerate(ids)}
        self._offsets = section("offsets").cast("Q")
        self._starts = section("starts").cast("Q")
        self._records = section("records")
        self._search, self._search_end = sections["search"][0], sum(sections["search"])
        if len(ids) != count or len(self._offsets) != 2 * count or len(self._starts) != count + 1:
            raise CorruptIndex("inconsistent index")

    @classmethod
    def open(cls, path: Path) -> IdpIndex:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                raise CorruptIndex("empty index file")
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        return cls(mm, memoryview(mm))

    @classmethod
    def empty(cls) -> IdpIndex:
        return cls(None, memoryview(b""))

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, entity_id: object) -> bool:
        return entity_id in self._ids

    def entity_ids(self) -> Iterable[str]:
        return self._ids.keys()

    def _entity(self, i: int) -> IdpEntity:
        offset = self._offsets[2 * i]
        return from_record(marshal.loads(self._records[offset:offset + self._offsets[2 * i + 1]]))  # noqa: S302

    def get(self, entity_id: str) -> IdpEntity | None:
        i = self._ids.get(entity_id)
        return None if i is None else self._entity(i)

    def names_page(self, offset: int, limit: int) -> list[IdpEntity]:
        """Entities ``offset`` to ``offset + limit`` in display-name order."""
        return [self._entity(i) for i in range(max(0, offset), min(len(self._ids), max(0, offset) + max(0, limit)))]

    def iter_names(self) -> Iterator[IdpEntity]:
        """Every entity in display-name order, decoded one at a time."""
        return (self._entity(i) for i in range(len(self._ids)))

    def search(self, query: str, limit: int = 20) -> list[IdpEntity]:
        """Entities whose display names, entityID or keywords contain every word of ``query`` (any order,
        case and accents ignored), in display-name order; at most ``limit``."""
        words = sorted({w.encode("utf-8") for w in fold(query).split()}, key=len, reverse=True)[:_MAX_QUERY_WORDS]
        if not words or limit <= 0 or self._mm is None:
            return []
        mm, base, end, starts, count = self._mm, self._search, self._search_end, self._starts, len(self._ids)
        found: list[IdpEntity] = []
        line = 0
        # Leapfrog: the next line holding all words is at or after the furthest next hit of any word; each
        # turn either takes a line or moves forward by at least one, so it stops within `count` turns.
        while len(found) < limit and line < count:
            line_start = base + starts[line]
            furthest = line
            for word in words:
                hit = mm.find(word, line_start, end)
                if hit < 0:
                    return found
                furthest = max(furthest, bisect.bisect_right(starts, hit - base) - 1)
            if furthest == line:
                found.append(self._entity(line))
                line += 1
            else:
                line = furthest
        return found
