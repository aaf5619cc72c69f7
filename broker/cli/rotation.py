"""``broker keys rotate stage|switch|retire|status``: signing-key rotation (``broker.keys.rotation``).

Each step is recorded in the audit trail (``key-rotated``) and is followed by a rolling restart of the
instances, which read ``certs/`` at start-up.
"""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from typing import Any

from broker.cli.common import JSON_HELP, settings_of
from broker.config.settings import Settings
from broker.keys.rotation import DEFAULT_GRACE, DEFAULT_MIN_PUBLISHED, retire, stage, status, switch


def _audit(settings: Settings, reason: str) -> None:
    from broker.core.audit import AuditEvent, AuditKind
    from broker.core.model import utcnow
    from broker.storage import SqlAuditLog, create_engine_for

    engine = create_engine_for(settings.database_url)
    try:
        SqlAuditLog(engine).record(AuditEvent(AuditKind.KEY_ROTATED, utcnow(), reason=reason))
    finally:
        engine.dispose()


def _hours(text: str) -> timedelta:
    try:
        hours = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of hours") from exc
    if not 0 <= hours <= 24 * 90:
        raise argparse.ArgumentTypeError("hours must be between 0 and 2160")
    return timedelta(hours=hours)


def cmd_rotate(args: argparse.Namespace) -> int:
    from broker.core.model import utcnow

    settings = settings_of(args)
    certs, now = settings.certs_dir, utcnow()
    said = ""
    if args.step == "stage":
        folder = stage(certs, "broker " + settings.base_url, now)
        _audit(settings, f"signing keys staged in {folder.name}/ (published, not yet signing)")
        said = (f"staged new keys in {folder}; restart the instances so they publish them, then switch after "
                f"{(now + args.min_published).isoformat()}")
    elif args.step == "switch":
        switch(certs, now, min_published=args.min_published, force=args.force)
        _audit(settings, "signing keys switched: the staged keys sign, the old ones stay published")
        said = "switched; restart the instances. The previous keys stay published until 'broker keys rotate retire'"
    elif args.step == "retire":
        retired = retire(certs, now, grace=args.grace, force=args.force)
        if retired:
            _audit(settings, "previous signing keys retired (no longer published)")
        said = "retired the previous keys; restart the instances" if retired else "nothing to retire"
    if said and not args.json:
        print(said)
    current = status(certs)
    if args.json:
        print(json.dumps({"phase": current.phase,
                          "next_since": current.next_since.isoformat() if current.next_since else None,
                          "previous_since": current.previous_since.isoformat() if current.previous_since else None}))
    elif args.step == "status":
        print(f"phase: {current.phase}")
    return 0


def add_commands(keys: Any) -> None:
    p = keys.add_parser("rotate", help="rotate the signing keys: stage, switch, retire (see 'status')")
    p.add_argument("step", choices=["stage", "switch", "retire", "status"],
                   help="stage: publish new keys; switch: sign with them; retire: drop the old ones; "
                        "status: where the rotation stands")
    p.add_argument("--min-published", type=_hours, default=DEFAULT_MIN_PUBLISHED, metavar="HOURS",
                   help="switch only after the staged keys were published this long (default 24)")
    p.add_argument("--grace", type=_hours, default=DEFAULT_GRACE, metavar="HOURS",
                   help="retire only after the previous keys stayed published this long (default 24)")
    p.add_argument("--force", action="store_true", help="skip the waiting period")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_rotate)
