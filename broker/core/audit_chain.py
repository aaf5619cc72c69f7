"""The hash chain that makes the audit trail tamper-evident: pure hashing and verification, no storage.

Each audit record carries a gap-free sequence number ``seq`` (1, 2, 3, ...), the hash of the record
before it (``prev_hash``; 64 zeros for the first) and its own ``hash``::

    hash = SHA-256(UTF-8(canonical JSON of {"v": 1, "seq", "at", "kind", "account_id", "upstream",
                                            "downstream", "reason", "reference", "prev_hash"}))

The canonical JSON (version 1) is the RFC 8259 text Python's ``json.dumps`` writes with ``sort_keys=True``,
``separators=(",", ":")`` and ``ensure_ascii=True``: keys sorted, no white space, every non-ASCII character
as a ``\\uXXXX`` escape, absent fields as ``null`` (so ``None`` and ``""`` differ). ``at`` is the UTC time
as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``. JSON quotes and escapes every string, so no choice of field values can
make two different records encode alike (a reason of ``"a|b"`` is not the reason ``"a"`` followed by a
field ``"b"``). The version ``"v": 1`` is part of what is hashed; a later encoding would be version 2 and
stored beside the records, and version 1 must never change, since stored hashes depend on it.

What the chain shows (``verify_chain``): a record edited in place (its hash no longer matches its
fields), a record deleted from the middle (a gap in ``seq``), records replaced or reordered with their
hashes recomputed (the next record's ``prev_hash`` no longer matches). Deleting the newest records
leaves a valid but shorter chain, so the store also keeps the chain head (the newest ``seq`` and
``hash``), written in the same transaction as each record, and ``verify_chain`` compares the end of the
rows with it. The hash is keyed by nothing: someone able to rewrite the head too can rewrite the whole
tail consistently; to catch that, operators copy the head hash (``broker audit verify`` prints it)
somewhere the database's writers cannot reach, and compare later.

Parallel chains (issue 21). One chain would make every append of every broker instance wait on one row lock,
so the trail is ``AUDIT_CHAINS`` (8) independent chains, each with its own gap-free ``seq`` and its own head;
an append takes whichever chain's head is free (``broker.storage.audit``). Each chain is verified on its own
exactly as above, and every one of the 8 heads must exist. The encoding (version 1) is the same for every
chain and does not hash the chain number: chain 1 holds the records written before chains existed, whose
stored hashes must keep verifying. The chain is bound instead by its genesis value (``genesis_hash``): chain 1
starts from 64 zeros as before, chain ``n`` > 1 from SHA-256 of ``"broker audit chain <n>"``. A single record
moved to another chain breaks links in both anyway (a gap where it was, a broken link where it lands); the
genesis value also stops a whole chain's records (with their head) being passed off as another chain's, since
record 1 of chain ``n`` must follow ``genesis_hash(n)``.

The anchor (``anchor_text``): ``broker audit verify`` prints every head as ``<chain>:<seq>:<hash>``, comma
separated, and a combined digest (SHA-256 of that text). An operator keeps the line where the database's
writers cannot reach; ``verify --anchor`` later checks that each saved head is still record ``<seq>`` of its
chain with that hash (``anchor_problem``), which catches a consistent rewrite of a tail and its head.

Records name the account only by its pseudonymous id (``broker.core.audit``), so erasing an account's
personal data touches no audit record and no hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from broker.core.audit import AuditEvent

#: the ``prev_hash`` of the first record, and the head's hash while the chain is empty
GENESIS_HASH = "0" * 64
#: the version of the canonical encoding, hashed with every record
ENCODING_VERSION = 1
#: how many parallel chains the audit trail keeps (their ids are 1..AUDIT_CHAINS; see the module docstring)
AUDIT_CHAINS = 8
CHAIN_IDS = range(1, AUDIT_CHAINS + 1)


def genesis_hash(chain: int) -> str:
    """The ``prev_hash`` of chain ``chain``'s first record and its head's hash while it is empty: 64 zeros for
    chain 1 (unchanged since before chains existed), SHA-256 of ``"broker audit chain <n>"`` for the others."""
    if chain == 1:
        return GENESIS_HASH
    return hashlib.sha256(f"broker audit chain {chain}".encode("ascii")).hexdigest()


def canonical_time(at: datetime) -> str:
    """``at`` in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (always microseconds, always four year digits)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("naive datetime: audit records carry timezone-aware times")
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def record_hash(prev_hash: str, seq: int, at: datetime, kind: str, account_id: str | None,
                upstream: str | None, downstream: str | None, reason: str | None, reference: str | None) -> str:
    """The hex SHA-256 of one record's canonical encoding (version 1, see the module docstring)."""
    document = {
        "v": ENCODING_VERSION, "seq": seq, "at": canonical_time(at), "kind": kind, "account_id": account_id,
        "upstream": upstream, "downstream": downstream, "reason": reason, "reference": reference,
        "prev_hash": prev_hash,
    }
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()


def chain_hash(prev_hash: str, seq: int, event: AuditEvent) -> str:
    """The hash of ``event`` stored as record ``seq`` after the record whose hash is ``prev_hash``.

    ``event`` must hold exactly what is stored (already shortened to the columns' sizes).
    """
    return record_hash(prev_hash, seq, event.at, event.kind.value, event.account_id, event.upstream,
                       event.downstream, event.reason, event.reference)


@dataclass(frozen=True)
class ChainedRecord:
    """One stored audit record with its place in the chain; ``kind`` as stored, even if no longer known."""

    seq: int
    at: datetime
    kind: str
    account_id: str | None
    upstream: str | None
    downstream: str | None
    reason: str | None
    reference: str | None
    prev_hash: str
    hash: str
    #: the row's own id in the database, to find it; not part of the hash
    id: int | None = None
    #: the chain the record belongs to; not hashed, bound through the chain's genesis value
    chain: int = 1

    def computed_hash(self) -> str:
        return record_hash(self.prev_hash, self.seq, self.at, self.kind, self.account_id, self.upstream,
                           self.downstream, self.reason, self.reference)


@dataclass(frozen=True)
class ChainHead:
    """The newest record's ``seq`` and ``hash`` as last written with it; ``(0, genesis_hash(chain))`` when empty."""

    seq: int
    hash: str
    chain: int = 1


EMPTY_HEAD = ChainHead(0, GENESIS_HASH)


class ProblemKind(Enum):
    #: the record's fields no longer give its hash
    EDITED = "edited"
    #: ``seq`` skips this number: the record was deleted
    MISSING = "missing"
    #: the record does not follow the one before it: that one was rewritten, or records were reordered
    BROKEN_LINK = "broken-link"
    #: ``seq`` goes backwards or repeats
    OUT_OF_ORDER = "out-of-order"
    #: the head names a newer record than the last one there: the newest records were deleted
    TAIL_DELETED = "tail-deleted"
    #: the last record is not the one the head names: it was replaced with a recomputed hash
    HEAD_MISMATCH = "head-mismatch"
    #: records exist beyond the head: written outside the broker, or the head was set back
    BEYOND_HEAD = "beyond-head"
    #: the chain head itself is gone
    NO_HEAD = "no-head"
    #: records carry a chain number the broker does not keep: written outside the broker
    UNKNOWN_CHAIN = "unknown-chain"
    #: the record an operator's saved anchor names is gone or different: the chain was rewritten after it
    ANCHOR_MISMATCH = "anchor-mismatch"


@dataclass(frozen=True)
class ChainProblem:
    """The first place the chain is broken: ``seq`` is the first record that cannot be trusted."""

    kind: ProblemKind
    seq: int
    #: the database id of the offending row, when there is one
    record_id: int | None = None
    chain: int = 1

    @property
    def message(self) -> str:
        """What is wrong, naming the chain: ``chain 3: record 12 was edited``."""
        return f"chain {self.chain}: {self.detail}"

    @property
    def detail(self) -> str:
        n = self.seq
        messages = {
            ProblemKind.EDITED: f"record {n} was edited",
            ProblemKind.MISSING: f"record {n} is missing (deleted)",
            ProblemKind.BROKEN_LINK: f"record {n} does not follow record {n - 1} "
                                     f"(record {n - 1} was rewritten or replaced, or records were reordered)",
            ProblemKind.OUT_OF_ORDER: f"record {n} is out of order (sequence numbers repeat or go backwards)",
            ProblemKind.TAIL_DELETED: f"the newest records after {n - 1} were deleted" if n > 1
                                      else "every record was deleted",
            ProblemKind.HEAD_MISMATCH: f"record {n} was replaced (it is not the newest record the chain head names)",
            ProblemKind.BEYOND_HEAD: f"record {n} was added outside the broker (it is beyond the chain head)",
            ProblemKind.NO_HEAD: "the chain head is missing",
            ProblemKind.UNKNOWN_CHAIN: f"record {n} is in a chain the broker does not keep (written outside it)",
            ProblemKind.ANCHOR_MISMATCH: f"record {n} is not the one the saved anchor names "
                                         f"(the chain was rewritten or cut after the anchor was saved)",
        }
        return messages[self.kind]


def verify_chain(records: Iterable[ChainedRecord], head: ChainHead | None = None,
                 chain: int = 1) -> ChainProblem | None:
    """The first break in chain ``chain``'s ``records`` (given in ``seq`` order), or ``None`` when they form an
    intact chain from ``genesis_hash(chain)``.

    With ``head``, the records must also end exactly at it (so deleting the newest records is detected).
    Records are read one at a time: ``records`` may stream from a database in constant memory.
    """
    expected, prev_hash = 1, genesis_hash(chain)
    for record in records:
        if record.seq > expected:
            return ChainProblem(ProblemKind.MISSING, expected, chain=chain)
        if record.seq < expected:
            return ChainProblem(ProblemKind.OUT_OF_ORDER, record.seq, record.id, chain)
        if record.computed_hash() != record.hash:
            return ChainProblem(ProblemKind.EDITED, record.seq, record.id, chain)
        if record.prev_hash != prev_hash:
            return ChainProblem(ProblemKind.BROKEN_LINK, record.seq, record.id, chain)
        expected, prev_hash = expected + 1, record.hash
    if head is None:
        return None
    last = expected - 1
    if head.seq > last:
        return ChainProblem(ProblemKind.TAIL_DELETED, last + 1, chain=chain)
    if head.seq < last:
        return ChainProblem(ProblemKind.BEYOND_HEAD, head.seq + 1, chain=chain)
    if head.hash != prev_hash:
        return ChainProblem(ProblemKind.HEAD_MISMATCH, last, chain=chain)
    return None


# --- the heads together: the line an operator keeps, and its check ----------------------------------------------


def anchor_text(heads: Iterable[ChainHead]) -> str:
    """Every head as ``<chain>:<seq>:<hash>``, in chain order, comma separated (what ``verify --anchor`` takes)."""
    return ",".join(f"{h.chain}:{h.seq}:{h.hash}" for h in sorted(heads, key=lambda h: h.chain))


def combined_digest(heads: Iterable[ChainHead]) -> str:
    """SHA-256 of ``anchor_text(heads)``: one value that changes when any chain changes."""
    return hashlib.sha256(anchor_text(heads).encode("ascii")).hexdigest()


def parse_anchor(text: str) -> dict[int, ChainHead]:
    """The heads in an anchor line; ``ValueError`` for anything that is not one (a chain twice, a bad hash)."""
    heads: dict[int, ChainHead] = {}
    for part in text.strip().split(","):
        fields = part.strip().split(":")
        if len(fields) != 3 or not fields[0].isdigit() or not fields[1].isdigit():
            raise ValueError(f"not <chain>:<seq>:<hash>: {part.strip()[:80]!r}")
        chain, seq, digest = int(fields[0]), int(fields[1]), fields[2].lower()
        if chain not in CHAIN_IDS or chain in heads:
            raise ValueError(f"chain {chain} is not one of 1..{AUDIT_CHAINS}, or is named twice")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"chain {chain}: the hash is not 64 hexadecimal digits")
        heads[chain] = ChainHead(seq, digest, chain)
    return heads


def anchor_problem(saved: ChainHead, stored_hash: str | None) -> ChainProblem | None:
    """Whether record ``saved.seq`` of chain ``saved.chain`` still has the hash saved in the anchor;
    ``stored_hash`` is that record's hash now (``None`` if it is gone). Seq 0 names the chain's genesis."""
    if saved.seq == 0:
        stored_hash = genesis_hash(saved.chain)
    if stored_hash != saved.hash:
        return ChainProblem(ProblemKind.ANCHOR_MISMATCH, saved.seq, chain=saved.chain)
    return None

