"""One security defence, as the mutation run removes it: a textual patch of one source file and the tests that
must fail once it is applied."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Defence:
    """``old`` must occur exactly once in ``path`` (relative to the repository root); the run replaces it with
    ``new`` in a copy of the repository and runs ``tests`` (pytest node ids) there: they must fail."""

    name: str  # short, unique, kebab-case: "link-offer-authoritative-upstream"
    path: str  # "broker/web/link_offer.py"
    old: str  # the exact source text of the defence
    new: str  # the same code with the defence removed (still valid Python)
    tests: tuple[str, ...]  # node ids; at least one must fail with the patch applied
    why: str = ""  # one line: what the patch removes, when not obvious from the name
