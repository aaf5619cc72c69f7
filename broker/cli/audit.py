"""``broker audit``: check the audit trail's hash chain and read its newest records."""

from __future__ import annotations

import argparse
import json
from typing import Any

from broker.cli.common import JSON_HELP, settings_of


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Check the hash chain of the audit trail (``broker.core.audit_chain``); 1 names the first broken record."""
    from broker.storage import SqlAuditLog, create_engine_for

    engine = create_engine_for(settings_of(args).database_url)
    try:
        check = SqlAuditLog(engine).check()
    finally:
        engine.dispose()
    head, problem = check.head, check.problem
    if args.json:
        print(json.dumps({
            "intact": problem is None, "records": head.seq if head else None, "head": head.hash if head else None,
            "problem": None if problem is None else {"kind": problem.kind.value, "seq": problem.seq,
                                                     "record_id": problem.record_id, "message": problem.message},
        }))
    elif problem is None and head is not None:
        print(f"audit trail intact: {head.seq} records, head {head.hash[:16]}")
    elif problem is not None:
        where = f" (row id {problem.record_id})" if problem.record_id is not None else ""
        print(f"audit trail broken: {problem.message}{where}")
    return 0 if problem is None else 1


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
        print(json.dumps([{"seq": r.seq, "at": r.at.isoformat(), "kind": r.kind,
                           **{f: getattr(r, f) for f in fields}, "hash": r.hash} for r in records], indent=2))
        return 0
    for r in records:
        details = " ".join(f"{f}={getattr(r, f)}" for f in fields if getattr(r, f) is not None)
        print(f"{r.seq} {r.at.isoformat()} {r.kind} {details}".rstrip())
    return 0


def add_commands(sub: Any) -> None:
    audit = sub.add_parser("audit", help="check and read the audit trail").add_subparsers(dest="audit",
                                                                                         required=True)
    p = audit.add_parser("verify", help="check the audit trail's hash chain (edited or deleted records)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_audit_verify)
    p = audit.add_parser("list", help="the newest audit records, newest first")
    p.add_argument("--account", help="only the records of this pseudonymous account id")
    p.add_argument("--limit", type=_audit_limit, default=50, help="how many records (default 50)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_audit_list)
