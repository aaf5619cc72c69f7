"""``broker accounts``: the operator disables a citizen's account, enables it again, and looks at it (issue 18;
the journey is ``broker.journeys.account_status``, which the operator console will call too).

    broker accounts disable ACCOUNT_ID [--reason hijacking|bulk-account|TEXT] [--json]
    broker accounts enable ACCOUNT_ID [--json]
    broker accounts show ACCOUNT_ID [--json]

Disabling ends the account's live sessions (their apps told as at "sign out everywhere"), revokes its OpenID
grants, and queues RISC ``account-disabled`` for the apps' event streams; ``broker worker`` sends them. ``show``
prints the status, the linked sign-in methods by their upstreams' names and how many sessions are live: never a
claim value or an upstream subject. The account id is the pseudonymous one of the audit log (``broker audit
list``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from broker.cli.common import JSON_HELP, journeys_of
from broker.journeys import account_status
from broker.journeys.context import Journeys

MAX_ACCOUNT_ID = 64




def operator() -> str:
    """Who runs the command, for the audit log: the operating-system user."""
    try:
        return f"cli {getpass.getuser()}"
    except (OSError, KeyError):  # no user name in this environment (a container without a passwd entry)
        return "cli"


def _run(args: argparse.Namespace, act: Callable[[Journeys], Any]) -> Any:
    with journeys_of(args) as j:
        return act(j)


def cmd_disable(args: argparse.Namespace) -> int:
    """Disable the account; 1 when there is no such account."""
    try:
        change = _run(args, lambda j: account_status.disable(j, args.account_id, args.reason, operator()))
    except account_status.UnknownAccount:
        return _unknown(args.account_id)
    if args.json:
        print(json.dumps(asdict(change)))
    elif change.changed:
        print(f"account {change.account_id} disabled: {change.sessions_ended} sessions ended, "
              f"{change.events_queued} account-disabled events queued")
    else:
        print(f"account {change.account_id} was disabled already")
    return 0


def cmd_enable(args: argparse.Namespace) -> int:
    """Enable the disabled account again; 1 when there is no such account."""
    try:
        change = _run(args, lambda j: account_status.enable(j, args.account_id, operator()))
    except account_status.UnknownAccount:
        return _unknown(args.account_id)
    if args.json:
        print(json.dumps(asdict(change)))
    elif change.changed:
        print(f"account {change.account_id} enabled: {change.events_queued} account-enabled events queued")
    else:
        print(f"account {change.account_id} was not disabled")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """The account's status, sign-in methods and live sessions; 1 when there is no such account."""
    try:
        shown: account_status.AccountStatus = _run(args, lambda j: account_status.status(j, args.account_id))
    except account_status.UnknownAccount:
        return _unknown(args.account_id)
    disabled = shown.disabled_at.isoformat() if shown.disabled_at else None
    if args.json:
        print(json.dumps({"account_id": shown.account_id, "created_at": shown.created_at.isoformat(),
                          "status": "disabled" if disabled else "enabled", "disabled_at": disabled,
                          "disabled_reason": shown.disabled_reason,
                          "sign_in_methods": list(shown.sign_in_methods), "live_sessions": shown.live_sessions},
                         indent=2))
        return 0
    status = "enabled" if disabled is None else f"disabled since {disabled}"
    if shown.disabled_reason:
        status += f" (reason: {shown.disabled_reason})"
    print(f"account          {shown.account_id}\ncreated          {shown.created_at.isoformat()}\n"
          f"status           {status}\nsign-in methods  {', '.join(shown.sign_in_methods) or '-'}\n"
          f"live sessions    {shown.live_sessions}")
    return 0


def _unknown(account_id: str) -> int:
    print(f"broker: there is no account {account_id}", file=sys.stderr)
    return 1


def _account_id(text: str) -> str:
    if not text or len(text) > MAX_ACCOUNT_ID or not text.isprintable():
        raise argparse.ArgumentTypeError(f"an account id is printable text of at most {MAX_ACCOUNT_ID} characters")
    return text


def _reason(text: str) -> str:
    try:
        checked = account_status.checked_reason(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if checked is None:
        raise argparse.ArgumentTypeError("the reason is empty")
    return checked


def add_commands(sub: Any) -> None:
    accounts = sub.add_parser("accounts", help="disable, enable and look at a citizen's account").add_subparsers(
        dest="accounts", required=True)
    p = accounts.add_parser("disable", help="disable an account: its sessions end, it signs in nowhere, apps are told")
    p.add_argument("account_id", type=_account_id, help="the pseudonymous account id (as in `broker audit list`)")
    p.add_argument("--reason", type=_reason,
                   help="hijacking or bulk-account (RISC reasons, sent to the apps), or any text (kept for the "
                        "operators only)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_disable)
    p = accounts.add_parser("enable", help="enable a disabled account again (apps are told)")
    p.add_argument("account_id", type=_account_id, help="the pseudonymous account id")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_enable)
    p = accounts.add_parser("show", help="an account's status, sign-in methods and live sessions (no claim values)")
    p.add_argument("account_id", type=_account_id, help="the pseudonymous account id")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_show)
