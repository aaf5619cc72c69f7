"""``broker audit``: check the audit trail's hash chain and read its newest records."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from broker.cli.common import JSON_HELP, settings_of

if TYPE_CHECKING:
    from broker.core.audit_chain import ChainProblem


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Check every hash chain of the audit trail (``broker.core.audit_chain``); 1 names each chain's first broken
    record. Prints every chain's head and the combined digest: the heads line is what ``--anchor`` takes later."""
    from broker.core.audit_chain import parse_anchor
    from broker.storage import SqlAuditLog, create_engine_for

    try:
        anchor = parse_anchor(args.anchor) if args.anchor is not None else None
    except ValueError as exc:
        print(f"--anchor: {exc}", file=sys.stderr)
        return 2
    engine = create_engine_for(settings_of(args).database_url)
    try:
        check = SqlAuditLog(engine).check(anchor)
    finally:
        engine.dispose()
    head, problems = check.head, check.problems
    if args.json:
        print(json.dumps({
            "intact": not problems, "records": head.seq if head else None, "head": head.hash if head else None,
            "heads": [{"chain": h.chain, "seq": h.seq, "hash": h.hash} for h in check.heads],
            "anchor": check.anchor, "anchor_checked": anchor is not None,
            "problem": _problem_json(problems[0]) if problems else None,
            "problems": [_problem_json(p) for p in problems],
        }))
        return 0 if not problems else 1
    for problem in problems:
        where = f" (row id {problem.record_id})" if problem.record_id is not None else ""
        print(f"audit trail broken: {problem.message}{where}")
    if head is not None and not problems:
        checked = ", matches the anchor" if anchor is not None else ""
        print(f"audit trail intact: {head.seq} records in {len(check.heads)} chains{checked}, "
              f"combined digest {head.hash}")
    for h in check.heads:
        print(f"  chain {h.chain}: {h.seq} records, head {h.hash}")
    print(f"heads (keep this line; --anchor checks it later): {check.anchor}")
    return 0 if not problems else 1


def _problem_json(problem: ChainProblem) -> dict[str, Any]:
    return {"kind": problem.kind.value, "chain": problem.chain, "seq": problem.seq, "record_id": problem.record_id,
            "message": problem.message}


def _audit_limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
        raise argparse.ArgumentTypeError("must be a whole number from 1 to 1000000")
    return int(text)


def cmd_audit_list(args: argparse.Namespace) -> int:
    """The newest audit records, newest first (pseudonymous account ids only: nothing personal to hide)."""
    from broker.storage import SqlAuditLog, create_engine_for

    engine = create_engine_for(settings_of(args).database_url)
    try:
        records = SqlAuditLog(engine).events(account_id=args.account, limit=args.limit)
    finally:
        engine.dispose()
    fields = ("account_id", "upstream", "downstream", "reason", "reference")
    if args.json:
        print(json.dumps([{"chain": r.chain, "seq": r.seq, "at": r.at.isoformat(), "kind": r.kind,
                           **{f: getattr(r, f) for f in fields}, "hash": r.hash} for r in records], indent=2))
        return 0
    for r in records:
        details = " ".join(f"{f}={getattr(r, f)}" for f in fields if getattr(r, f) is not None)
        print(f"{r.chain}:{r.seq} {r.at.isoformat()} {r.kind} {details}".rstrip())
    return 0


def add_commands(sub: Any) -> None:
    audit = sub.add_parser("audit", help="check and read the audit trail").add_subparsers(dest="audit",
                                                                                         required=True)
    p = audit.add_parser("verify", help="check the audit trail's hash chains (edited or deleted records)")
    p.add_argument("--anchor", metavar="TEXT",
                   help="the heads line verify printed earlier (1:<seq>:<hash>,2:...): check that each saved head is "
                        "still that record of its chain (catches a consistent rewrite made since)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_audit_verify)
    p = audit.add_parser("list", help="the newest audit records, newest first")
    p.add_argument("--account", help="only the records of this pseudonymous account id")
    p.add_argument("--limit", type=_audit_limit, default=50, help="how many records (default 50)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_audit_list)
