"""The audit hash chain (``broker.core.audit_chain``): a deterministic, unambiguous encoding, and verification
that names the first broken record and why."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

import pytest

from broker.core.audit import AuditEvent, AuditKind
from broker.core.audit_chain import (
    AUDIT_CHAINS,
    CHAIN_IDS,
    GENESIS_HASH,
    ChainedRecord,
    ChainHead,
    ChainProblem,
    ProblemKind,
    anchor_problem,
    anchor_text,
    canonical_time,
    chain_hash,
    combined_digest,
    genesis_hash,
    parse_anchor,
    record_hash,
    verify_chain,
)

AT = datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)
EVENT = AuditEvent(AuditKind.LOGIN_SUCCEEDED, AT, account_id="acc-1", upstream="op", downstream="https://sp",
                   reason="sso", reference="REF1")


def chain(events: list[AuditEvent]) -> list[ChainedRecord]:
    records, prev = [], GENESIS_HASH
    for seq, event in enumerate(events, start=1):
        digest = chain_hash(prev, seq, event)
        records.append(ChainedRecord(seq, event.at, event.kind.value, event.account_id, event.upstream,
                                     event.downstream, event.reason, event.reference, prev, digest, id=100 + seq))
        prev = digest
    return records


def chain_of(number: int, n: int) -> list[ChainedRecord]:
    """``n`` records of chain ``number``, from its genesis value."""
    records, prev = [], genesis_hash(number)
    for seq in range(1, n + 1):
        event = dataclasses.replace(EVENT, reason=f"c{number}-{seq}")
        digest = chain_hash(prev, seq, event)
        records.append(ChainedRecord(seq, event.at, event.kind.value, event.account_id, event.upstream,
                                     event.downstream, event.reason, event.reference, prev, digest, id=200 + seq,
                                     chain=number))
        prev = digest
    return records


def head_of(records: list[ChainedRecord]) -> ChainHead:
    return ChainHead(records[-1].seq, records[-1].hash) if records else ChainHead(0, GENESIS_HASH)


FIVE = chain([dataclasses.replace(EVENT, reason=f"r{i}", at=AT + timedelta(seconds=i)) for i in range(5)])


def test_the_hash_is_sha256_of_the_documented_canonical_json() -> None:
    expected = hashlib.sha256(
        b'{"account_id":"acc-1","at":"2026-11-23T12:00:00.123456Z","downstream":"https://sp","kind":'
        b'"login-succeeded","prev_hash":"' + GENESIS_HASH.encode() + b'","reason":"sso","reference":"REF1",'
        b'"seq":1,"upstream":"op","v":1}'
    ).hexdigest()
    assert chain_hash(GENESIS_HASH, 1, EVENT) == expected
    assert chain_hash(GENESIS_HASH, 1, EVENT) == chain_hash(GENESIS_HASH, 1, dataclasses.replace(EVENT))


def test_the_time_is_hashed_in_utc_whatever_zone_it_was_given_in() -> None:
    elsewhere = AT.astimezone(timezone(timedelta(hours=-5)))
    assert canonical_time(elsewhere) == "2026-11-23T12:00:00.123456Z"
    assert chain_hash(GENESIS_HASH, 1, dataclasses.replace(EVENT, at=elsewhere)) == chain_hash(GENESIS_HASH, 1, EVENT)
    assert canonical_time(datetime(5, 1, 2, tzinfo=UTC)) == "0005-01-02T00:00:00.000000Z"
    with pytest.raises(ValueError, match="naive"):
        canonical_time(datetime(2026, 1, 1))


@pytest.mark.parametrize(("field", "value"), [
    ("kind", AuditKind.LOGIN_FAILED), ("at", AT + timedelta(microseconds=1)), ("account_id", "acc-2"),
    ("account_id", None), ("upstream", "op2"), ("downstream", "https://sp/"), ("reason", "sso "),
    ("reason", ""), ("reference", "REF2"),
])
def test_any_change_of_a_field_changes_the_hash(field: str, value: Any) -> None:
    changed = dataclasses.replace(EVENT, **{field: value})
    assert chain_hash(GENESIS_HASH, 1, changed) != chain_hash(GENESIS_HASH, 1, EVENT)


def test_seq_and_prev_hash_are_hashed_too() -> None:
    base = chain_hash(GENESIS_HASH, 1, EVENT)
    assert chain_hash(GENESIS_HASH, 2, EVENT) != base
    assert chain_hash("1" + GENESIS_HASH[1:], 1, EVENT) != base


@pytest.mark.parametrize(("one", "other"), [
    # text moved between neighbouring fields, with and without separator-like characters
    ({"upstream": "a|b", "downstream": None}, {"upstream": "a", "downstream": "b"}),
    ({"upstream": "a", "downstream": "|b"}, {"upstream": "a|", "downstream": "b"}),
    ({"reason": 'x","reference":"y', "reference": None}, {"reason": "x", "reference": "y"}),
    ({"reason": "a\x00b", "reference": None}, {"reason": "a", "reference": "b"}),
    # absent is not empty, and "null" the text is not null
    ({"reason": None}, {"reason": ""}),
    ({"reason": None}, {"reason": "null"}),
    ({"account_id": None, "upstream": "x"}, {"account_id": "x", "upstream": None}),
])
def test_shifting_text_between_fields_cannot_collide(one: dict[str, Any], other: dict[str, Any]) -> None:
    assert chain_hash(GENESIS_HASH, 1, dataclasses.replace(EVENT, **one)) != \
        chain_hash(GENESIS_HASH, 1, dataclasses.replace(EVENT, **other))


def test_non_ascii_text_is_escaped_so_the_encoding_is_plain_ascii() -> None:
    digest = record_hash(GENESIS_HASH, 1, AT, "login-failed", None, None, None, "Zoë \ud800", None)
    document = json.dumps({"v": 1, "seq": 1, "at": canonical_time(AT), "kind": "login-failed", "account_id": None,
                           "upstream": None, "downstream": None, "reason": "Zoë \ud800", "reference": None,
                           "prev_hash": GENESIS_HASH}, sort_keys=True, separators=(",", ":"))
    assert "\\u00eb" in document
    assert digest == hashlib.sha256(document.encode("ascii")).hexdigest()


# --- verification -------------------------------------------------------------------------------------------


def test_an_intact_chain_verifies_with_and_without_its_head() -> None:
    assert verify_chain(FIVE) is None
    assert verify_chain(FIVE, head_of(FIVE)) is None
    assert verify_chain([], ChainHead(0, GENESIS_HASH)) is None
    assert FIVE[0].prev_hash == GENESIS_HASH and all(b.prev_hash == a.hash for a, b in pairwise(FIVE))


def test_an_edited_record_is_named() -> None:
    records = list(FIVE)
    records[2] = dataclasses.replace(records[2], reason="nothing to see")
    assert verify_chain(records, head_of(FIVE)) == ChainProblem(ProblemKind.EDITED, 3, 103)


def test_a_deleted_middle_record_is_named() -> None:
    records = FIVE[:1] + FIVE[2:]
    problem = verify_chain(records, head_of(FIVE))
    assert problem == ChainProblem(ProblemKind.MISSING, 2)
    assert problem.message == "chain 1: record 2 is missing (deleted)"


def test_a_rewritten_record_with_a_recomputed_hash_breaks_the_next_link() -> None:
    forged = dataclasses.replace(FIVE[1], reason="forged")
    forged = dataclasses.replace(forged, hash=forged.computed_hash())
    problem = verify_chain([FIVE[0], forged, *FIVE[2:]], head_of(FIVE))
    assert problem == ChainProblem(ProblemKind.BROKEN_LINK, 3, 103)
    assert "record 2 was rewritten" in problem.message


def test_swapped_records_are_found() -> None:
    swapped = [dataclasses.replace(FIVE[2], seq=2), dataclasses.replace(FIVE[1], seq=3)]
    problem = verify_chain([FIVE[0], *swapped, *FIVE[3:]], head_of(FIVE))
    assert problem is not None and problem.seq == 2


def test_records_out_of_order_are_found() -> None:
    assert verify_chain([FIVE[0], FIVE[1], FIVE[1]]) == ChainProblem(ProblemKind.OUT_OF_ORDER, 2, 102)


def test_deleting_the_newest_records_is_found_only_with_the_head() -> None:
    assert verify_chain(FIVE[:3]) is None  # the rows alone cannot tell
    problem = verify_chain(FIVE[:3], head_of(FIVE))
    assert problem == ChainProblem(ProblemKind.TAIL_DELETED, 4)
    assert problem.message == "chain 1: the newest records after 3 were deleted"
    assert verify_chain([], head_of(FIVE)) == ChainProblem(ProblemKind.TAIL_DELETED, 1)


def test_a_replaced_last_record_is_found_by_the_head() -> None:
    forged = dataclasses.replace(FIVE[4], reason="forged")
    forged = dataclasses.replace(forged, hash=forged.computed_hash())
    problem = verify_chain([*FIVE[:4], forged], head_of(FIVE))
    assert problem == ChainProblem(ProblemKind.HEAD_MISMATCH, 5)


def test_records_beyond_the_head_are_found() -> None:
    assert verify_chain(FIVE, head_of(FIVE[:4])) == ChainProblem(ProblemKind.BEYOND_HEAD, 5)


def test_verification_streams_and_stops_at_the_first_problem() -> None:
    seen: list[int] = []

    def rows() -> Iterator[ChainedRecord]:
        for record in FIVE:
            seen.append(record.seq)
            yield dataclasses.replace(record, kind="edited") if record.seq == 2 else record

    assert verify_chain(rows()) == ChainProblem(ProblemKind.EDITED, 2, 102)
    assert seen == [1, 2]


@pytest.mark.parametrize(("problem", "message"), [
    (ChainProblem(ProblemKind.EDITED, 17), "chain 1: record 17 was edited"),
    (ChainProblem(ProblemKind.MISSING, 17, chain=4), "chain 4: record 17 is missing (deleted)"),
    (ChainProblem(ProblemKind.TAIL_DELETED, 43), "chain 1: the newest records after 42 were deleted"),
    (ChainProblem(ProblemKind.TAIL_DELETED, 1, chain=8), "chain 8: every record was deleted"),
    (ChainProblem(ProblemKind.NO_HEAD, 0, chain=3), "chain 3: the chain head is missing"),
    (ChainProblem(ProblemKind.UNKNOWN_CHAIN, 2, chain=9),
     "chain 9: record 2 is in a chain the broker does not keep (written outside it)"),
])
def test_messages_name_the_chain_and_the_record(problem: ChainProblem, message: str) -> None:
    assert problem.message == message


# --- parallel chains (issue 21) -------------------------------------------------------------------------------


def test_each_chain_starts_from_its_own_genesis_value() -> None:
    assert genesis_hash(1) == GENESIS_HASH  # the records from before chains keep verifying
    assert genesis_hash(3) == hashlib.sha256(b"broker audit chain 3").hexdigest()
    assert len({genesis_hash(n) for n in CHAIN_IDS}) == AUDIT_CHAINS == 8
    three = chain_of(3, 4)
    assert three[0].prev_hash == genesis_hash(3)
    assert verify_chain(three, ChainHead(4, three[-1].hash, 3), chain=3) is None
    assert verify_chain([], ChainHead(0, genesis_hash(5), 5), chain=5) is None
    assert verify_chain([], ChainHead(0, GENESIS_HASH, 5), chain=5) == ChainProblem(ProblemKind.HEAD_MISMATCH, 0,
                                                                                    chain=5)


def test_a_chain_passed_off_as_another_breaks_at_its_first_record() -> None:
    two = chain_of(2, 3)
    head = ChainHead(3, two[-1].hash, 2)
    assert verify_chain(two, head, chain=2) is None
    assert verify_chain(two, dataclasses.replace(head, chain=6), chain=6) == ChainProblem(
        ProblemKind.BROKEN_LINK, 1, two[0].id, 6)
    assert verify_chain(FIVE, head_of(FIVE), chain=2) == ChainProblem(ProblemKind.BROKEN_LINK, 1, 101, 2)


def test_the_anchor_lists_every_head_and_parses_back() -> None:
    heads = [ChainHead(0, genesis_hash(n), n) for n in CHAIN_IDS if n != 2] + [ChainHead(5, "ab" * 32, 2)]
    text = anchor_text(heads)
    assert text.startswith(f"1:0:{GENESIS_HASH},2:5:{'ab' * 32},3:0:") and text.count(",") == 7
    assert parse_anchor(text) == {h.chain: h for h in heads}
    assert parse_anchor(f" 4:12:{'CD' * 32} ") == {4: ChainHead(12, "cd" * 32, 4)}
    assert combined_digest(heads) == hashlib.sha256(text.encode()).hexdigest()
    assert combined_digest(heads[1:]) != combined_digest(heads)


@pytest.mark.parametrize("text", ["", "1:2", f"9:1:{'a' * 64}", f"1:1:{'a' * 64},1:2:{'b' * 64}", "1:x:" + "a" * 64,
                                  "1:1:" + "g" * 64, "1:1:" + "a" * 63, f"-1:1:{'a' * 64}"])
def test_a_malformed_anchor_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_anchor(text)


def test_an_anchor_head_must_still_be_there_with_its_hash() -> None:
    saved = ChainHead(7, "ab" * 32, 3)
    assert anchor_problem(saved, "ab" * 32) is None
    assert anchor_problem(saved, "cd" * 32) == ChainProblem(ProblemKind.ANCHOR_MISMATCH, 7, chain=3)
    assert anchor_problem(saved, None) == ChainProblem(ProblemKind.ANCHOR_MISMATCH, 7, chain=3)
    assert anchor_problem(ChainHead(0, genesis_hash(3), 3), None) is None
    assert anchor_problem(ChainHead(0, GENESIS_HASH, 3), None) is not None
