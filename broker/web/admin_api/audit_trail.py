"""The audit trail (``view-audit``): its newest records, an account's or a support reference's, and the check of
its hash chain (``broker audit verify``; ``broker.core.audit_chain``)."""

from __future__ import annotations

from typing import Any

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
    """Check the whole hash chain: it reads every record, so only when asked."""
    check = services().audit.check()
    return {
        "intact": check.problem is None,
        "head": {"seq": check.head.seq, "hash": check.head.hash} if check.head is not None else None,
        "problem": ({"kind": check.problem.kind.value, "seq": check.problem.seq, "message": check.problem.message}
                    if check.problem is not None else None),
    }


OPERATIONS = (
    Operation("GET", "/audit", "list-audit", "Read the audit trail", listing, "AuditRecords", Permission.VIEW_AUDIT,
              query=(Param("account", "only the records naming this account id", 36),
                     Param("reference", "only the records carrying this support reference", 64),
                     Param("limit", f"how many, newest first (default {DEFAULT_LIMIT}, at most {MAX_LIMIT})", 4,
                           integer=True))),
    Operation("POST", "/audit/verify", "verify-audit", "Verify the audit trail's hash chain", verify, "ChainCheck",
              Permission.VIEW_AUDIT, description="Reads every record; says whether the chain is intact and, if not, "
                                                 "the first record that cannot be trusted."),
)
