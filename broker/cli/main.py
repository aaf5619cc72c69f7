"""The ``broker`` command. Every subcommand runs unattended: no prompts, exit status 0 on success,
1 when the work failed or found problems, 2 for a usage error; ``--json`` where it prints data.

    broker init [FOLDER] [--demo] [--base-url URL] [--database-url URL] [--force]
    broker run [--host H] [--port P]          development server (+ DEMO peers when enabled)
    broker migrate                            bring the database schema up to date
    broker check [--json]                     validate config, keys and every registration
    broker metadata idp|sp [--output FILE]    the broker's signed SAML IdP / SP metadata
    broker metadata sources [--refresh] [--json]   IdP metadata sources (files, federations) and their state
    broker keys generate-es256 [--force]      create certs/oidc-es256.key (ES256 signing for OpenID Connect)
    broker keys generate-claims-key FILE [--force]   a new key that seals personal claims at rest
    broker keys rotate stage|switch|retire|status [--min-published H] [--grace H] [--force] [--json]
                                              signing-key rotation: publish, switch, retire (broker.keys.rotation)
    broker keys rotate-claims [--batch-size N] [--forget-unreadable] [--json]
                                              re-seal every stored claim value and authenticator secret under
                                              the current claims key
    broker purge [--json]                     delete expired login state, codes, tokens, old login history
    broker audit verify [--json]              check the audit trail's hash chain; 1 names the first break
    broker audit list [--account ID] [--limit N] [--json]   the newest audit records, newest first
    broker analytics rollup [--batch-size N] [--json] | report [--days N] [--csv FIGURE | --svg FIGURE] [--json]
                                              analytics aggregates from the audit trail; the figures
    broker worker [--once] [--poll S] [--json]   send queued back-channel logouts and events until SIGTERM
    broker outbox list [--state dead|pending|held|delivered] [--limit N] [--json] | retry MESSAGE_ID
    broker accounts disable ACCOUNT_ID [--reason R] | enable ACCOUNT_ID | show ACCOUNT_ID [--json]
    broker operators grant|revoke ACCOUNT_ID --role ROLE | list [--json]   operator console roles
    broker roles define|remove APP ROLE | assign|unassign APP ROLE ACCOUNT_ID | map|unmap APP ROLE --upstream N
        --group G | list APP [--json]       roles for apps (the roles claim)
    broker sp add FILE | list | remove ENTITY_ID
    broker upstream add NAME ... | list | remove NAME | presets
    broker client add --client-id ID --redirect-uri URI ... | list | remove CLIENT_ID
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from broker.cli import (
    accounts,
    analytics,
    audit,
    clients,
    delivery,
    metadata,
    operators,
    parties,
    roles,
    rotation,
    sps,
)
from broker.cli.common import CONFIG_HELP, JSON_HELP, settings_of
from broker.config.settings import ConfigError
from broker.keys.keyring import KeyRingError
from broker.keys.rotation import RotationError
from broker.storage.claims_rotation import ClaimsKeyError


class CommandError(Exception):
    """A failure to report on stderr with exit status 1."""


def cmd_init(args: argparse.Namespace) -> int:
    from broker.instance import InstanceExists, InstanceOptions, init_instance

    options = InstanceOptions(Path(args.folder), args.base_url, args.database_url, args.demo)
    try:
        config = init_instance(options, force=args.force)
    except InstanceExists as exc:
        raise CommandError(str(exc)) from exc
    print(f"created {config}")
    print(f"start it with: {_broker_command()} --config {_shown(config)} run")
    return 0


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (what a person would type)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _broker_command() -> str:
    """How to run this ``broker`` again from the working directory: plain ``broker`` when that name on PATH is
    this very program, else the path of the one that is running (e.g. ``.venv/bin/broker``)."""
    running = Path(sys.argv[0])
    if running.name != "broker":  # python -m broker.cli, or a test calling main()
        running = Path(sys.executable).parent / "broker"
    on_path = shutil.which("broker")
    if on_path is not None and running.exists() and Path(on_path).resolve() == running.resolve():
        return "broker"
    return _shown(running) if running.exists() else "broker"


def cmd_migrate(args: argparse.Namespace) -> int:
    from broker.storage import upgrade

    settings = settings_of(args)
    upgrade(settings.database_url)
    print("database schema is current")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from broker.app import create_app
    from broker.storage import upgrade
    from broker.web.ops.access_log import PathOnlyRequestHandler

    settings = settings_of(args)
    upgrade(settings.database_url)
    app = create_app(settings)
    if settings.demo.enabled:
        from broker.demo.runner import start_demo_peers

        for line in start_demo_peers(settings):
            print(line)
    print(f"broker: {settings.base_url}  (IdP metadata: {settings.base_url}/saml2/idp/metadata)")
    app.run(host=args.host, port=args.port, threaded=True, use_reloader=False,
            request_handler=PathOnlyRequestHandler)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from broker.keys.keyring import load_keyring
    from broker.registry import FileRegistry
    from broker.web.services import describe_upstream

    settings = settings_of(args)
    load_keyring(settings.certs_dir)
    snapshot = FileRegistry(settings.metadata_dir, settings.instance_dir, describe_upstream).snapshot
    report = {
        "saml_sps": sorted(snapshot.saml.sps),
        "upstreams": sorted(snapshot.upstream_parties),
        "oidc_clients": sorted(snapshot.oidc_clients),
        "problems": list(snapshot.problems),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{len(report['saml_sps'])} SAML SPs, {len(report['upstreams'])} upstreams, "
              f"{len(report['oidc_clients'])} OIDC clients")
        for problem in report["problems"]:
            print(f"problem: {problem}")
    return 1 if report["problems"] else 0


def cmd_keys(args: argparse.Namespace) -> int:
    from broker.keys.keyring import ES256_KEY, generate_es256_key

    path = settings_of(args).certs_dir / ES256_KEY
    if path.exists() and not args.force:
        raise CommandError(f"{path} already exists; use --force to replace it (tokens it signed stop verifying)")
    generate_es256_key(path.parent)
    print(f"created {path}")
    return 0


def cmd_generate_claims_key(args: argparse.Namespace) -> int:
    """Needs no configuration: it is how an instance that lacks the key gets one."""
    from broker.instance import write_claims_key

    path = Path(args.file)
    if path.exists() and not args.force:
        raise CommandError(f"{path} already exists; use --force to replace it (values it sealed stop opening "
                           "unless it is kept in claims_previous_keys_file)")
    try:
        write_claims_key(path)
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror}") from exc
    print(f"created {path}")
    return 0


def cmd_rotate_claims(args: argparse.Namespace) -> int:
    """Re-seal stored claims and authenticator secrets under the current key; 1 while any value is under another
    key or unreadable. ``--forget-unreadable`` clears unreadable claims only: an unreadable authenticator secret
    is kept and counted (its owner removes and re-adds the authenticator in the portal)."""
    from dataclasses import asdict

    from broker.core.audit import AuditEvent, AuditKind
    from broker.core.model import utcnow
    from broker.storage import SqlAuditLog, create_engine_for
    from broker.storage.claims_rotation import PLAIN, reseal_claims
    from broker.storage.sealing import Sealer

    settings = settings_of(args)
    sealer = Sealer(settings.claims_keys)
    engine = create_engine_for(settings.database_url)
    try:
        report = reseal_claims(engine, sealer, batch_size=args.batch_size, forget_unreadable=args.forget_unreadable)
        SqlAuditLog(engine).record(AuditEvent(
            AuditKind.KEY_ROTATED, utcnow(),
            reason=f"claims re-sealed under key {sealer.current_key_id}: {report.resealed} values, "
                   f"{report.unreadable} unreadable, {report.forgotten} forgotten; "
                   f"{report.secrets_resealed} authenticator secrets, {report.secrets_unreadable} unreadable"))
    finally:
        engine.dispose()
    elsewhere = {kid: n for kid, n in report.by_key.items() if kid != sealer.current_key_id}
    if args.json:
        print(json.dumps({"current_key_id": sealer.current_key_id, **asdict(report)}))
    else:
        print(f"re-sealed {report.resealed} claim values under key {sealer.current_key_id}; "
              f"{report.already_current} already were, {report.changed_meanwhile} changed meanwhile, "
              f"{report.unreadable} unreadable, {report.forgotten} of them forgotten")
        print(f"re-sealed {report.secrets_resealed} authenticator secrets under key {sealer.current_key_id}; "
              f"{report.secrets_already_current} already were, {report.secrets_changed_meanwhile} changed meanwhile, "
              f"{report.secrets_unreadable} unreadable (kept: never forgotten)")
        print("stored values by key: " + (", ".join(f"{kid}: {n}" for kid, n in report.by_key.items()) or "none"))
        if elsewhere:
            print(f"still under other keys or plain ({PLAIN}): {', '.join(elsewhere)}. Keep those keys; restart "
                  "every broker with the current claims_key_file and run this again (--forget-unreadable clears "
                  "claim values no configured key opens)")
            if report.secrets_unreadable:
                print(f"{report.secrets_unreadable} authenticator secrets no configured key opens are kept, never "
                      "forgotten: configure the key that sealed them, or their owners remove and re-add those "
                      "authenticators in the portal")
        else:
            print("every value is under the current key: previous claims keys can be removed")
    return 1 if elsewhere else 0


def cmd_purge(args: argparse.Namespace) -> int:
    """Delete expired login state, client-assertion ids, codes and tokens, and the login history past its retention
    (run it from cron or a timer; expired rows are never used, they only take space)."""
    from broker.core.model import utcnow
    from broker.storage import SqlGrantStore, SqlPendingStore, create_engine_for
    from broker.storage.login_history import SqlLoginHistory
    from broker.storage.sealing import Sealer

    settings = settings_of(args)
    engine = create_engine_for(settings.database_url)
    try:
        now = utcnow()
        pending = SqlPendingStore(engine, Sealer(settings.claims_keys)).purge_expired(now)
        tokens = SqlGrantStore(engine).purge_expired(now)
        history = SqlLoginHistory(engine, retention=settings.risk.retention).purge_expired(now)
    finally:
        engine.dispose()
    print(json.dumps({"pending_states": pending, "grants_and_tokens": tokens, "login_history": history})
          if args.json else f"purged {pending} expired login states, {tokens} expired grants and tokens and "
                            f"{history} login history entries past the retention")
    return 0


def _batch_size(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise argparse.ArgumentTypeError("must be a whole number from 1 to 100000")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="broker", description="Federation and single sign-on broker.")
    parser.add_argument("--config", help=CONFIG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="create an instance folder")
    p.add_argument("folder", nargs="?", default=".", help="the instance folder to create (default: .)")
    p.add_argument("--base-url", default="http://127.0.0.1:5000",
                   help="the broker's public URL; https except on 127.0.0.1/localhost (default: %(default)s)")
    p.add_argument("--database-url", default=None,
                   help="SQLAlchemy URL (default: SQLite in the folder; postgresql+psycopg://... in production)")
    p.add_argument("--demo", action="store_true", help="also register the DEMO app and DEMO provider")
    p.add_argument("--force", action="store_true", help="overwrite an existing broker.toml")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("run", help="serve with the development server")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=5000, help="port to listen on (default: %(default)s)")
    p.set_defaults(func=cmd_run)

    sub.add_parser("migrate", help="upgrade the database schema").set_defaults(func=cmd_migrate)

    p = sub.add_parser("check", help="validate config, keys and registrations")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_check)

    metadata.add_commands(sub)

    p = sub.add_parser("purge", help="delete expired login state and tokens, and login history past its retention")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_purge)

    keys = sub.add_parser("keys", help="create the broker's keys").add_subparsers(dest="keys", required=True)
    p = keys.add_parser("generate-es256", help="create the ES256 key an instance made before it existed lacks")
    p.add_argument("--force", action="store_true", help="replace an existing key")
    p.set_defaults(func=cmd_keys)
    p = keys.add_parser("generate-claims-key", help="write a new key that seals personal claims (no config needed)")
    p.add_argument("file", help="where to write it, mode 0600 (e.g. certs/claims.key)")
    p.add_argument("--force", action="store_true", help="replace an existing key")
    p.set_defaults(func=cmd_generate_claims_key)
    p = keys.add_parser("rotate-claims", help="re-seal every stored claim value and authenticator secret under the "
                        "current claims key")
    p.add_argument("--batch-size", type=_batch_size, default=500, help="rows per transaction (default 500)")
    p.add_argument("--forget-unreadable", action="store_true",
                   help="replace claim values no configured key opens by no claims (refilled at the next login); "
                        "an unreadable authenticator secret is kept and counted, never deleted (its owner removes "
                        "and re-adds the authenticator in the portal)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_rotate_claims)
    rotation.add_commands(keys)

    audit.add_commands(sub)
    analytics.add_commands(sub)
    delivery.add_commands(sub)
    accounts.add_commands(sub)
    operators.add_commands(sub)
    roles.add_commands(sub)
    sps.add_commands(sub)
    parties.add_commands(sub)
    clients.add_commands(sub)
    _config_anywhere(parser)
    return parser


def _config_anywhere(parser: argparse.ArgumentParser) -> None:
    """``--config`` is accepted after the subcommand too (``broker sp list --config FILE``): every subcommand's
    parser gets the option, with no default of its own, so one given before the subcommand is kept."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases name one parser twice
                if not any("--config" in a.option_strings for a in child._actions):
                    child.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
                _config_anywhere(child)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (CommandError, ConfigError, KeyRingError, ClaimsKeyError, parties.PartyError,
            metadata.MetadataCommandError, RotationError) as exc:
        print(f"broker: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:  # init, migrate, run: the database cannot be opened or migrated
        print(f"broker: database error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    raise SystemExit(main())
