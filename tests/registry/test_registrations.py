"""What the registration services share: readable values, field-by-field diffs, and writing a file in one step."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from broker.registry.registrations import (
    Change,
    RegistrationRefused,
    diff_fields,
    is_plain_stem,
    readable,
    write_atomically,
)


@pytest.mark.parametrize(("value", "shown"), [
    (None, None), ("", None), ((), None), ([], None), (frozenset(), None),
    (True, "true"), (False, "false"), ("text", "text"), (3, "3"),
    (("b", "a"), "b, a"), (frozenset({"b", "a"}), "a, b"), ({"y": ["1", "2"], "x": True}, "x=true, y=1, 2"),
])
def test_readable_values(value: object, shown: str | None) -> None:
    assert readable(value) == shown


def test_a_diff_lists_what_changed_in_the_order_the_fields_first_appear() -> None:
    changes = diff_fields("app", {"name": "A", "urls": ["u"], "same": 1, "gone": "x"},
                          {"new": True, "name": "B", "urls": ("u",), "same": 1})

    assert changes == (Change("app", "name", "A", "B"), Change("app", "gone", "x", None),
                       Change("app", "new", None, "true"))
    assert [str(c) for c in changes] == ["app  name: A -> B", "app  gone: x -> -", "app  new: - -> true"]


def test_a_refusal_lists_every_problem() -> None:
    refused = RegistrationRefused(["one", "two"])

    assert (str(refused), refused.problems) == ("one; two", ("one", "two"))


@pytest.mark.parametrize(("stem", "plain"), [
    ("permits", True), ("permits.city-v2_x", True), (".hidden", False), ("../up", False), ("a/b", False),
    ("", False), ("x" * 102, False),
])
def test_plain_file_stems(stem: str, plain: bool) -> None:
    assert is_plain_stem(stem) is plain


def test_a_file_is_replaced_in_one_step_and_readable_by_all(tmp_path: Path) -> None:
    target = tmp_path / "folder" / "app.json"

    write_atomically(target, b"first")
    write_atomically(target, b"second")

    assert target.read_bytes() == b"second"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["app.json"]
