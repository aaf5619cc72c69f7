"""The audit trail (``view-audit``): its newest records, an account's or a support reference's, and the check of
its hash chains (``broker audit verify``; ``broker.core.audit_chain``). A record is named by its chain and its
``seq`` in that chain."""

from __future__ import annotations

from typing import Any

from broker.core.audit_chain import ChainProblem
from broker.core.operators import Permission
from broker.web.admin_api.operation import ApiError, Call, Operation, Param
from broker.web.admin_api.schemas import records
from broker.web.services import services

DEFAULT_LIMIT, MAX_LIMIT = 50, 500


def listing(call: Call) -> dict[str, Any]:
    """The newest ``limit`` records, newest first, only the account's or the reference's when given."""
    q = call.query
    text = q.get("limit", str(DEFAULT_LIMIT))
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise ApiError(400, "invalid_request", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    found = services().audit.events(account_id=q.get("account") or None, limit=int(text),
                                    reference=q.get("reference") or None)
    return {"records": records(found)}


def verify(call: Call) -> dict[str, Any]:
    """Check every hash chain (``broker audit verify``, without ``--anchor``): it reads every record, so only when
    asked. ``head`` is all chains as one, as before chains existed: ``seq`` the number of records, ``hash`` the
    combined digest (``None`` when a chain's head is missing); ``heads`` is each chain's own."""
    check = services().audit.check()
    head = check.head
    return {
        "intact": not check.problems,
        "records": sum(h.seq for h in check.heads),
        "head": {"seq": head.seq, "hash": head.hash} if head is not None else None,
        "heads": [{"chain": h.chain, "seq": h.seq, "hash": h.hash} for h in check.heads],
        "anchor": check.anchor,
        "problem": _problem(check.problem) if check.problem is not None else None,
        "problems": [_problem(p) for p in check.problems],
    }


def _problem(problem: ChainProblem) -> dict[str, Any]:
    return {"kind": problem.kind.value, "chain": problem.chain, "seq": problem.seq, "message": problem.message}


OPERATIONS = (
    Operation("GET", "/audit", "list-audit", "Read the audit trail", listing, "AuditRecords", Permission.VIEW_AUDIT,
              query=(Param("account", "only the records naming this account id", 36),
                     Param("reference", "only the records carrying this support reference", 64),
                     Param("limit", f"how many, newest first (default {DEFAULT_LIMIT}, at most {MAX_LIMIT})", 4,
                           integer=True))),
    Operation("POST", "/audit/verify", "verify-audit", "Verify the audit trail's hash chains", verify,
              "ChainCheck", Permission.VIEW_AUDIT,
              description="Reads every record of the 8 chains; says whether they are intact, each chain's head (keep "
                          "the anchor line where the database's writers cannot reach, to compare with `broker audit "
                          "verify --anchor`) and, if not, each chain's first record that cannot be trusted."),
)
