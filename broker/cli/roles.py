"""``broker roles``: roles for apps (issue 19; the journey is ``broker.journeys.app_roles``, which the operator
console and the admin API call too).

    broker roles define APP ROLE [--description TEXT]    a role of the app (or a new description)
    broker roles remove APP ROLE                         the role, with its assignments and mappings
    broker roles assign APP ROLE ACCOUNT_ID              a citizen holds the role in that app
    broker roles unassign APP ROLE ACCOUNT_ID
    broker roles map APP ROLE --upstream NAME --group VALUE     whoever signs in through NAME with that group
    broker roles unmap APP ROLE --upstream NAME --group VALUE
    broker roles list APP [--json]

APP is the app's party id: a SAML app's entity id or an OpenID client's client_id. The app receives its roles as
the ``roles`` claim when it asks (scope ``roles``, or the SAML attribute ``urn:civic-broker:attribute:roles``),
through the release policy and consent. Every change is audited with the operating-system user as ``cli <user>``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from broker.cli.accounts import operator
from broker.cli.common import JSON_HELP, journeys_of
from broker.journeys import app_roles
from broker.journeys.context import Journeys

ERRORS = (app_roles.UnknownApp, app_roles.UnknownRole, app_roles.UnknownAccount, app_roles.InvalidRole)




def _change(args: argparse.Namespace, act: Callable[[Journeys, str], app_roles.RolesChange]) -> int:
    try:
        with journeys_of(args) as j:
            change = act(j, operator())
    except ERRORS as exc:
        print(f"broker: {_problem(exc)}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({**asdict(change), "changed": change.changed}))
    else:
        print(f"{change.party_id}: {change.action} {'done' if change.changed else 'changed nothing'}; "
              f"[{', '.join(change.before)}] -> [{', '.join(change.after)}]")
    return 0


def _problem(exc: Exception) -> str:
    names: dict[type[Exception], str] = {app_roles.UnknownApp: "no registered app",
                                         app_roles.UnknownRole: "no such role", app_roles.UnknownAccount: "no account"}
    what = names.get(type(exc))
    return f"{what} {str(exc)[:200]!r}" if what else str(exc)


def cmd_define(args: argparse.Namespace) -> int:
    return _change(args, lambda j, by: app_roles.define(j, by, args.app, args.role, args.description))


def cmd_remove(args: argparse.Namespace) -> int:
    return _change(args, lambda j, by: app_roles.remove(j, by, args.app, args.role))


def cmd_assign(args: argparse.Namespace) -> int:
    return _change(args, lambda j, by: app_roles.assign(j, by, args.app, args.role, args.account_id))


def cmd_unassign(args: argparse.Namespace) -> int:
    return _change(args, lambda j, by: app_roles.unassign(j, by, args.app, args.role, args.account_id))


def cmd_map(args: argparse.Namespace) -> int:
    return _change(args, lambda j, by: app_roles.map_group(j, by, args.app, args.role, args.upstream, args.group))


def cmd_unmap(args: argparse.Namespace) -> int:
    return _change(args, lambda j, by: app_roles.unmap_group(j, by, args.app, args.role, args.upstream, args.group))


def cmd_list(args: argparse.Namespace) -> int:
    with journeys_of(args) as j:
        found = app_roles.listing(j, args.app)
    if args.json:
        print(json.dumps(found.as_json(), indent=2))
        return 0
    for role in found.roles:
        print(f"role {role.name}" + (f": {role.description}" if role.description else ""))
        for a in found.assignments:
            if a.role == role.name:
                print(f"  account {a.account_id} (by {a.granted_by})")
        for m in found.mappings:
            if m.role == role.name:
                print(f"  group {m.group!r} of upstream {m.upstream} (by {m.mapped_by})")
    return 0


def add_commands(sub: Any) -> None:
    roles = sub.add_parser("roles", help="roles for apps, released as the roles claim")
    commands = roles.add_subparsers(dest="roles", required=True)
    p = commands.add_parser("define", help="define a role of an app, or change its description")
    _app_role(p)
    p.add_argument("--description", default="", help="what the role allows (for operators)")
    p.set_defaults(func=cmd_define)
    p = commands.add_parser("remove", help="remove a role with its assignments and mappings")
    _app_role(p)
    p.set_defaults(func=cmd_remove)
    for name, func, text in (("assign", cmd_assign, "give an account a role in an app"),
                             ("unassign", cmd_unassign, "take an app's role from an account")):
        p = commands.add_parser(name, help=text)
        _app_role(p)
        p.add_argument("account_id", help="the account's pseudonymous id (broker audit list)")
        p.set_defaults(func=func)
    for name, func, text in (("map", cmd_map, "give a role to whoever signs in with an upstream group"),
                             ("unmap", cmd_unmap, "remove a mapping from an upstream group")):
        p = commands.add_parser(name, help=text)
        _app_role(p)
        p.add_argument("--upstream", required=True, help="the upstream's registered name (or IdP entity id)")
        p.add_argument("--group", required=True, help="the group value the upstream sends (groups, isMemberOf)")
        p.set_defaults(func=func)
    p = commands.add_parser("list", help="an app's roles, assignments and mappings")
    p.add_argument("app", help="the app's entity id or client_id")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_list)
    for p in commands.choices.values():
        if p.prog.split()[-1] != "list":
            p.add_argument("--json", action="store_true", help=JSON_HELP)


def _app_role(p: argparse.ArgumentParser) -> None:
    p.add_argument("app", help="the app's entity id or client_id")
    p.add_argument("role", help="the role's name: letters, digits, . _ : - (at most 64)")
