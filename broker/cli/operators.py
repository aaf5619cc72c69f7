"""``broker operators``: who may use the operator console and the admin API (issue 19; ``broker.core.operators``).

    broker operators grant ACCOUNT_ID --role admin|operator|support|auditor
    broker operators revoke ACCOUNT_ID --role ROLE
    broker operators list [--json]

An account id is the pseudonymous id ``broker audit list`` and the portal's data download show. The first
``admin`` is granted here; later grants can be made in the console by an ``admin``. Every grant and revocation is
written to the audit trail with ``cli`` as the operator.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from broker.cli.common import JSON_HELP, settings_of
from broker.core.audit import AuditEvent, AuditKind
from broker.core.operators import OperatorGrant, Role, parse_role

CLI = "cli"


def _role(text: str) -> Role:
    try:
        return parse_role(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_grant(args: argparse.Namespace) -> int:
    from broker.storage import SqlAccountStore, SqlAuditLog, SqlOperatorGrants, create_engine_for
    from broker.storage.sealing import Sealer

    settings = settings_of(args)
    engine = create_engine_for(settings.database_url)
    try:
        if SqlAccountStore(engine, Sealer(settings.claims_keys)).get(args.account_id) is None:
            print(f"broker: no account {args.account_id!r:.80}", file=sys.stderr)
            return 1
        now = datetime.now(UTC)
        granted = SqlOperatorGrants(engine).grant(OperatorGrant(args.account_id, args.role, CLI, now))
        if granted:
            SqlAuditLog(engine).record(AuditEvent(AuditKind.OPERATOR_ROLE_GRANTED, now, account_id=args.account_id,
                                                  reason=f"{args.role.value} granted by {CLI}"))
    finally:
        engine.dispose()
    print(f"{args.account_id}: {args.role.value} " + ("granted" if granted else "was already held"))
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from broker.storage import SqlAuditLog, SqlOperatorGrants, create_engine_for

    engine = create_engine_for(settings_of(args).database_url)
    try:
        revoked = SqlOperatorGrants(engine).revoke(args.account_id, args.role)
        if revoked:
            SqlAuditLog(engine).record(AuditEvent(AuditKind.OPERATOR_ROLE_REVOKED, datetime.now(UTC),
                                                  account_id=args.account_id,
                                                  reason=f"{args.role.value} revoked by {CLI}"))
    finally:
        engine.dispose()
    if not revoked:
        print(f"broker: {args.account_id!r:.80} does not hold {args.role.value}", file=sys.stderr)
        return 1
    print(f"{args.account_id}: {args.role.value} revoked")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from broker.storage import SqlOperatorGrants, create_engine_for

    engine = create_engine_for(settings_of(args).database_url)
    try:
        grants = SqlOperatorGrants(engine).listing()
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps([{"account_id": g.account_id, "role": g.role.value, "granted_by": g.granted_by,
                           "granted_at": g.granted_at.isoformat()} for g in grants], indent=2))
        return 0
    for g in grants:
        print(f"{g.account_id} {g.role.value} granted by {g.granted_by} at {g.granted_at.isoformat()}")
    return 0


def add_commands(sub: Any) -> None:
    operators = sub.add_parser("operators", help="who may use the operator console and admin API")
    commands = operators.add_subparsers(dest="operators", required=True)
    for name, func, text in (("grant", cmd_grant, "give an account an operator role"),
                             ("revoke", cmd_revoke, "take an operator role from an account")):
        p = commands.add_parser(name, help=text)
        p.add_argument("account_id", help="the account's pseudonymous id")
        p.add_argument("--role", type=_role, required=True, help="admin, operator, support or auditor")
        p.set_defaults(func=func)
    p = commands.add_parser("list", help="every role held, by account")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_list)
