"""Each gunicorn thread compiles its own SAML schema validator at its first Response (``broker.upstream.
saml_schema``); threads doing so at the same moment must all get one. Under load, two threads compiling at once
made one fail on an import the other was resolving: that login answered 500 (found by ``bench/gunicorn_bench.py``
at concurrency 16)."""

from __future__ import annotations

import threading

import pytest
from lxml import etree  # type: ignore[import-untyped]

from broker.upstream import saml_schema

THREADS = 8
ROUNDS = 12


def test_threads_compiling_their_validators_at_once_all_get_one() -> None:
    failures: list[BaseException] = []
    validators: list[object] = []

    def first_use(start: threading.Barrier) -> None:
        start.wait()
        try:
            validators.append(saml_schema._validator())
        except BaseException as exc:  # reported below
            failures.append(exc)

    for _ in range(ROUNDS):  # new threads each round: each compiles its own validator
        start = threading.Barrier(THREADS)
        threads = [threading.Thread(target=first_use, args=(start,)) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert failures == []
    assert len(validators) == THREADS * ROUNDS


def test_a_validator_is_compiled_only_while_holding_the_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deterministic side of the test above (whose race shows in some runs only): each compilation holds
    the lock that serialises them."""
    compile_schema = etree.XMLSchema
    held: list[bool] = []

    def compiling(document: object) -> object:
        held.append(saml_schema._compiled_lock.locked())
        return compile_schema(document)

    monkeypatch.setattr(etree, "XMLSchema", compiling)  # the module saml_schema calls it in
    threads = [threading.Thread(target=saml_schema._validator) for _ in range(3)]  # new threads: no validator yet
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert held == [True, True, True]
