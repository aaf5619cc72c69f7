"""The compiled, mmap-shared index: exact round trip, search without case or accents, atomic replacement."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.registry.idp_entity import IdpEntity, fold
from broker.registry.idp_index import CorruptIndex, IdpIndex, write_index
from broker.registry.idp_metadata import extract_idps, parse_document
from tests.registry.aggregate import entity_id, make_aggregate, session_material

NAMES = {
    0: ("Ville de Genève", "Ville de Genève"),
    1: ("City of Zürich", "Ville de Zurich"),
    2: ("Université Paris-Saclay", "Université Paris-Saclay"),
    3: ("Ålesund kommune", "Commune d'Ålesund"),
    4: ("Straße der Städte", "Rue des villes"),
}


def _entities(count: int = 12) -> list[IdpEntity]:
    m = session_material()
    entities, problems = extract_idps(parse_document(make_aggregate(count, None, m.certs, names=NAMES)), "fed")
    assert problems == []
    return entities


@pytest.fixture
def index(tmp_path: Path) -> IdpIndex:
    path = tmp_path / "fed.idx"
    assert write_index(path, _entities(), {"source": "fed"}).count == 12
    return IdpIndex.open(path)


def test_every_entity_comes_back_exactly(index: IdpIndex) -> None:
    for entity in _entities():
        assert index.get(entity.entity_id) == entity
    assert index.get("https://unknown.example") is None
    assert len(index) == 12 and entity_id(3) in index and index.meta == {"source": "fed"}


def test_names_page_is_in_display_name_order(index: IdpIndex) -> None:
    every = index.names_page(0, 100)
    keys = [fold(e.display_name()) for e in every]
    assert keys == sorted(keys) and len(every) == 12
    assert every[0].display_name() == "Ålesund kommune"  # folded: "alesund", not after "Z"
    assert index.names_page(10, 5) == every[10:]
    assert index.names_page(3, 2) == every[3:5]


@pytest.mark.parametrize(("query", "expected"), [
    ("geneve", [0]), ("GENÈVE ville", [0]), ("ville geneve", [0]), ("zurich", [1]), ("Zürich city", [1]),
    ("saclay université", [2]), ("alesund", [3]), ("strasse", [4]), ("STRASSE städte", [4]),
    ("idp7.example.org", [7]), ("campus11", [11]), ("geneve zurich", []), ("nowhere", []), ("", []),
])
def test_search_ignores_case_accents_and_word_order(index: IdpIndex, query: str, expected: list[int]) -> None:
    assert [e.entity_id for e in index.search(query)] == [entity_id(i) for i in expected]


def test_search_limit_and_order(index: IdpIndex) -> None:
    hits = index.search("university example", limit=3)
    assert len(hits) == 3
    assert [fold(e.display_name()) for e in hits] == sorted(fold(e.display_name()) for e in hits)
    assert len(index.search("exemple université", limit=100)) == 7  # entities 5-11 keep the default names
    assert index.search("university", limit=0) == []


def test_a_reader_keeps_its_copy_when_the_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "fed.idx"
    write_index(path, _entities(), {"generation": "1"})
    old = IdpIndex.open(path)
    write_index(path, _entities(3), {"generation": "2"})
    new = IdpIndex.open(path)
    assert len(old) == 12 and old.get(entity_id(9)) is not None and old.search("campus9")
    assert len(new) == 3 and new.get(entity_id(9)) is None and new.meta == {"generation": "2"}
    assert [p.name for p in tmp_path.iterdir()] == ["fed.idx"]  # no temporary file left behind


def test_duplicate_entity_ids_are_left_out(tmp_path: Path) -> None:
    entities = _entities()
    summary = write_index(tmp_path / "fed.idx", [*entities, entities[4]], {})
    assert summary.count == 11 and summary.duplicates == {entity_id(4): 2}
    index = IdpIndex.open(tmp_path / "fed.idx")
    assert index.get(entity_id(4)) is None and index.get(entity_id(5)) == entities[5] and not index.search("strasse")


def test_empty_index() -> None:
    empty = IdpIndex.empty()
    assert len(empty) == 0 and empty.get(entity_id(0)) is None and empty.search("x") == []
    assert empty.names_page(0, 10) == []


@pytest.mark.parametrize("damage", ["truncate", "magic", "empty"])
def test_a_damaged_file_is_refused(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "fed.idx"
    write_index(path, _entities(), {})
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "magic": b"X" + data[1:], "empty": b""}[damage])
    with pytest.raises(CorruptIndex):
        IdpIndex.open(path)


@pytest.mark.parametrize(("text", "folded"), [
    ("Université  de\nGenève", "universite de geneve"), ("ÅLESUND", "alesund"), ("Straße", "strasse"),
    ("Αθήνα", "αθηνα"), ("ﬁnance", "finance"),
])
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded
