"""``broker upstream ...`` (and the helpers ``broker sp``, ``broker client`` share): register parties by writing
the same files an integrator would drop into ``metadata/``, after validating them exactly as the broker will.
``broker sp`` lives in ``broker.cli.sps``. The validation and the writing are the registration services'
(``broker.registry.upstream_registrations`` here), which the operator console and the admin API call too."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from broker.cli.common import settings_of
from broker.registry.registrations import Change, RegistrationRefused
from broker.registry.upstream_registrations import UpstreamPreview, apply_upstream, preview_upstream, remove_upstream
from broker.registry.upstreams import UPSTREAM_FOLDER, UpstreamRegistration, load_upstreams
from broker.upstream.factory import describe, preset_catalog

T = TypeVar("T")


class PartyError(Exception):
    pass


def _folders(args: argparse.Namespace) -> tuple[Path, Path]:
    settings = settings_of(args)
    return settings.metadata_dir, settings.instance_dir


def _print(args: argparse.Namespace, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    """JSON with ``--json`` (missing values as null); otherwise one line per row, "-" for a missing value."""
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print("  ".join(_shown(row.get(c)) for c in columns))


def _shown(value: Any) -> str:
    if value is None or value == [] or value == "":
        return "-"
    return ",".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _report(problems: Any) -> None:
    """Problems go to stderr, so that stdout stays parseable (``--json``)."""
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)


def _service(call: Callable[[], T]) -> T:
    """A registration service's answer; its refusal becomes the command's error."""
    try:
        return call()
    except RegistrationRefused as exc:
        raise PartyError(str(exc)) from exc


def _print_changes(args: argparse.Namespace, changes: Sequence[Change], target: Path) -> None:
    """``--dry-run``: the diff against the current registration on stdout, one line per changed field (a JSON
    list of {party, field, before, after} with ``--json``); a reminder that nothing was written on stderr."""
    if getattr(args, "json", False):
        print(json.dumps([asdict(change) for change in changes], indent=2))
    else:
        for change in changes:
            print(change)
        if not changes:
            print(f"no changes to {target}")
    print("dry run: nothing was written", file=sys.stderr)


def _adapter_check(registration: UpstreamRegistration) -> object:
    """The adapter's settings check the broker makes before serving an OpenID Connect or OAuth 2.0 upstream."""
    return describe(registration) if registration.protocol != "saml" else None


def upstream_add(args: argparse.Namespace) -> int:
    metadata_dir, instance_dir = _folders(args)
    if args.entity_id:
        return _saml_upstream_add(args, metadata_dir, instance_dir)
    if not args.client_id:
        raise PartyError("--client-id is required (or --entity-id for a SAML IdP)")
    raw: dict[str, Any] = {"name": args.name, "protocol": "oidc", "client_id": args.client_id}
    for key in ("preset", "issuer", "display_name", "client_secret_env", "client_secret_file"):
        if getattr(args, key):
            raw[key] = getattr(args, key)
    if args.scope:
        raw["scopes"] = args.scope
    catalog = preset_catalog()
    if args.preset and args.preset not in catalog:
        raise PartyError(f"unknown preset {args.preset!r}; known: {', '.join(sorted(catalog))}")
    if args.option:
        raw["options"] = _parse_options(args.option)
    if args.preset:
        raw["protocol"] = catalog[args.preset].protocol
    # both checks the broker makes when it loads the file (the registry, then the adapter's settings)
    preview = preview_upstream(metadata_dir, instance_dir, raw, check=_adapter_check)
    if preview.problems:
        problem = "; ".join(preview.problems)
        needs = catalog[args.preset].options_help if args.preset else {}
        hint = "".join(f"\n  --option {key}=...   {text}" for key, text in needs.items())
        raise PartyError(f"{problem}{chr(10) + 'the ' + args.preset + ' preset takes:' + hint if hint else ''}")
    return _write_upstream(args, metadata_dir, instance_dir, preview)


def _saml_upstream_add(args: argparse.Namespace, metadata_dir: Path, instance_dir: Path) -> int:
    """A SAML IdP by entity ID; its metadata comes from ``metadata/saml-idp/`` or a federation feed."""
    misplaced = [flag for flag, value in (("--client-id", args.client_id), ("--issuer", args.issuer),
                                          ("--preset", args.preset), ("--scope", args.scope),
                                          ("--client-secret-env", args.client_secret_env),
                                          ("--client-secret-file", args.client_secret_file)) if value]
    if misplaced:
        raise PartyError(f"{', '.join(misplaced)}: not used with --entity-id (a SAML IdP)")
    raw: dict[str, Any] = {"name": args.name, "protocol": "saml", "entity_id": args.entity_id}
    if args.display_name:
        raw["display_name"] = args.display_name
    if args.option:
        raw["options"] = _parse_options(args.option)
    preview = preview_upstream(metadata_dir, instance_dir, raw)
    if preview.problems:
        raise PartyError("; ".join(preview.problems))
    return _write_upstream(args, metadata_dir, instance_dir, preview)


def _write_upstream(args: argparse.Namespace, metadata_dir: Path, instance_dir: Path,
                    preview: UpstreamPreview) -> int:
    target = metadata_dir / UPSTREAM_FOLDER / preview.file
    if preview.exists and not args.force:
        raise PartyError(f"{target} exists; use --force to replace it")
    written = _service(lambda: apply_upstream(metadata_dir, instance_dir, preview, replace_file=args.force,
                                              check=_adapter_check))
    _print(args, [{"name": args.name, "file": str(written)}], ("name", "file"))
    return 0


def upstream_list(args: argparse.Namespace) -> int:
    metadata_dir, instance_dir = _folders(args)
    found, problems = load_upstreams(metadata_dir, instance_dir)
    rows = [{"name": r.name, "protocol": r.protocol, "preset": r.preset, "issuer": r.issuer,
             "client_id": r.client_id} for r in found.values()]
    _print(args, rows, ("name", "protocol", "preset", "issuer"))
    _report(problems)
    return 1 if problems else 0


def upstream_remove(args: argparse.Namespace) -> int:
    metadata_dir, _ = _folders(args)
    target = _service(lambda: remove_upstream(metadata_dir, args.name))
    print(f"removed {target}")
    return 0


def _parse_options(pairs: list[str]) -> dict[str, Any]:
    """``--option key=value`` (repeat a key for a list: ``--option allowed_tenants=A --option allowed_tenants=B``)."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PartyError(f"--option takes key=value, got {pair!r}")
        if key in options:
            previous = options[key]
            options[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            options[key] = value
    return options


def upstream_presets(args: argparse.Namespace) -> int:
    rows = [{"preset": p.name, "protocol": p.protocol, "issuer": p.issuer, "display_name": p.display_name,
             "options": dict(p.options_help)} for p in preset_catalog().values()]
    if getattr(args, "json", False):
        _print(args, rows, ())
        return 0
    for preset in preset_catalog().values():
        print(f"{preset.name}  {preset.display_name}  {preset.issuer}")
        for key, text in preset.options_help.items():
            print(f"    --option {key}=...   {text}")
    return 0


def add_commands(sub: Any) -> None:
    up = sub.add_parser("upstream", help="upstream identity providers").add_subparsers(dest="up", required=True)
    p = up.add_parser("add", help="register an identity provider (OpenID Connect, a preset such as github, "
                                  "or a SAML IdP by --entity-id)")
    p.add_argument("name", help="the upstream's short name (its file metadata/upstreams/NAME.json)")
    p.add_argument("--preset", help="a known provider's defaults (see 'broker upstream presets')")
    p.add_argument("--issuer", help="issuer URL (discovery at ISSUER/.well-known/openid-configuration)")
    p.add_argument("--client-id", help="the broker's client id at an OpenID Connect provider")
    p.add_argument("--entity-id", help="a SAML IdP's entity id (its metadata from metadata/saml-idp/ or a "
                                       "federation feed); options: email_verified, allow_unsolicited, ...")
    secret = p.add_mutually_exclusive_group()  # a preset may make its own (apple); the others require one
    secret.add_argument("--client-secret-env", help="environment variable holding the client secret")
    secret.add_argument("--client-secret-file", help="file holding the client secret")
    p.add_argument("--display-name", help="the name citizens see on the sign-in buttons")
    p.add_argument("--scope", action="append", help="a scope to request (repeatable)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="a preset's own setting, e.g. team_id=ABC for apple (repeatable; "
                   "see 'broker upstream presets')")
    p.add_argument("--force", action="store_true", help="replace the registration of the same name")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=upstream_add)
    p = up.add_parser("list", help="the registered upstreams")
    p.add_argument("--json", action="store_true", help="print the upstreams as JSON")
    p.set_defaults(func=upstream_list)
    p = up.add_parser("remove", help="unregister an upstream")
    p.add_argument("name", help="the upstream's name")
    p.set_defaults(func=upstream_remove)
    p = up.add_parser("presets", help="the known providers' presets and the options each takes")
    p.add_argument("--json", action="store_true", help="print the presets as JSON")
    p.set_defaults(func=upstream_presets)
