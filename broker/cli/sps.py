"""``broker sp add|set|enable|disable|list|remove``: SAML apps, registered by writing the files an integrator would
drop into ``metadata/saml-sp/`` (the metadata ``<stem>.xml`` and the operator's settings ``<stem>.toml``,
``broker.registry.sp_settings``), after validating both together exactly as the broker will load them.

The work is done by ``broker.registry.sp_registrations``, which the operator console and the admin API call
too; this module parses the options and prints. ``broker sp add --dry-run`` validates and prints the diff
against the current registration (one line per changed field, certificates by SHA-256 fingerprint; ``--json``:
a list of {party, field, before, after}) and writes nothing. ``broker sp disable`` keeps the files and adds
``disabled = true`` to the settings: the broker stops serving the app until ``broker sp enable``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from broker.cli.common import settings_of
from broker.cli.parties import PartyError
from broker.cli.parties import _folders as folders
from broker.cli.parties import _print as print_rows
from broker.cli.parties import _print_changes as print_changes
from broker.cli.parties import _report as report
from broker.cli.parties import _service as service
from broker.registry.registrations import is_plain_stem
from broker.registry.saml_sps import SP_FOLDER, load_sp_catalog
from broker.registry.sp_registrations import (
    SpPreview,
    apply_sp,
    disabled_sps,
    find_sp_file,
    preview_sp,
    read_raw_settings,
    remove_sp,
    set_sp_enabled,
    set_sp_settings,
    sp_settings_notes,
)
from broker.registry.sp_settings import SpSettings, settings_path
from broker.registry.sp_view import SpView
from broker.registry.upstreams import load_upstreams
from broker.saml.catalog import SamlSp

#: option (argparse dest) -> settings key; list options are repeatable
_TEXT_OPTIONS = {"display_name": "display_name", "logo_uri": "logo_uri", "policy_uri": "policy_uri",
                 "default_upstream": "default_upstream", "required_acr": "required_acr"}
_LIST_OPTIONS = {"allowed_upstream": "allowed_upstreams", "receive": "receive", "required": "required"}
SETTING_KEYS = tuple(_TEXT_OPTIONS.values()) + tuple(_LIST_OPTIONS.values())


def _changes(args: argparse.Namespace, raw: dict[str, Any]) -> dict[str, Any]:
    """The settings after this command's options: ``--clear KEY`` first, then every option given."""
    updated = {k: v for k, v in raw.items() if k not in (getattr(args, "clear", None) or [])}
    for option, key in _TEXT_OPTIONS.items():
        if getattr(args, option) is not None:
            updated[key] = getattr(args, option)
    for option, key in _LIST_OPTIONS.items():
        if getattr(args, option) is not None:
            updated[key] = list(getattr(args, option))
    return updated


def _notes(args: argparse.Namespace, settings: SpSettings) -> None:
    """Notes, not errors (the broker loads the app either way), on stderr."""
    config = settings_of(args)
    known, _ = load_upstreams(config.metadata_dir, config.instance_dir)
    for note in sp_settings_notes(settings, known, lambda acr: config.assurance.rank(acr) is not None):
        print(f"note: {note}", file=sys.stderr)


def _refuse(preview: SpPreview, target: Path, force: bool) -> None:
    """The problems and clashes of ``preview``, in the words of the command (its options named)."""
    if preview.problems:
        raise PartyError("; ".join(preview.problems))
    if preview.taken:  # the first, by entity id
        taken = preview.taken[0]
        raise PartyError(f"{taken.entity_id} is already registered by {taken.file}; replace that file "
                         f"(--name {Path(taken.file).stem}) or remove it first")
    if preview.replaces_others and not force:
        replaced = sorted(view.entity_id for view in preview.current)
        raise PartyError(f"{target} exists and registers {', '.join(replaced)}; "
                         "choose another --name or use --force to replace it")


def sp_add(args: argparse.Namespace) -> int:
    metadata_dir, _ = folders(args)
    source = Path(args.file)
    if not source.is_file():
        raise PartyError(f"{source} does not exist")
    name = args.name.removesuffix(".xml") if args.name else re.sub(r"[^a-zA-Z0-9_.-]", "_", source.stem)
    if not is_plain_stem(name):
        raise PartyError(f"{name!r} is not a plain file name (letters, digits, '.', '-', '_'); choose one with --name")
    target = metadata_dir / SP_FOLDER / f"{name}.xml"
    existing = service(lambda: read_raw_settings(target)) if target.exists() else {}
    raw = _changes(args, existing)  # an update keeps the settings
    try:
        xml = source.read_bytes()
    except OSError as exc:
        raise PartyError(f"cannot read {source}: {exc.strerror or exc}") from exc
    preview = preview_sp(metadata_dir, xml, raw, name)
    _refuse(preview, target, args.force)
    if args.dry_run:
        _notes(args, preview.settings)
        print_changes(args, preview.changes, target)
        return 0
    service(lambda: apply_sp(metadata_dir, preview, replace_others=args.force))
    _notes(args, preview.settings)
    rows = [{"entity_id": view.entity_id, "name": view.display_name, "file": str(target)} for view in preview.sps]
    print_rows(args, rows, ("entity_id", "name", "file"))
    return 0


def sp_set(args: argparse.Namespace) -> int:
    metadata_dir, _ = folders(args)
    source = service(lambda: find_sp_file(metadata_dir, args.entity_id))
    raw = _changes(args, service(lambda: read_raw_settings(source)))
    preview = service(lambda: set_sp_settings(metadata_dir, args.entity_id, raw))
    _notes(args, preview.settings)
    view = next(view for view in preview.sps if view.entity_id == args.entity_id)
    print_rows(args, [_view_row(view)], ("entity_id", "name", "file"))
    return 0


def sp_enable(args: argparse.Namespace) -> int:
    metadata_dir, _ = folders(args)
    enabled = args.sp == "enable"
    preview = service(lambda: set_sp_enabled(metadata_dir, args.entity_id, enabled))
    state = "served again" if enabled else "disabled: no longer served (its files stay)"
    print(f"{args.entity_id} is {state}; settings in {settings_path(metadata_dir / SP_FOLDER / preview.file)}")
    return 0


def _row(sp: SamlSp) -> dict[str, Any]:
    return {"entity_id": sp.entity_id, "name": sp.display_name, "file": sp.source.name,
            "claims": sorted(sp.requested_claims), "allowed_upstreams": list(sp.allowed_upstreams),
            "default_upstream": sp.default_upstream, "required_acr": sp.required_acr}


def _view_row(view: SpView) -> dict[str, Any]:
    return {"entity_id": view.entity_id, "name": view.display_name, "file": view.file,
            "claims": sorted(view.claims), "allowed_upstreams": list(view.settings.allowed_upstreams),
            "default_upstream": view.settings.default_upstream, "required_acr": view.settings.required_acr}


def sp_list(args: argparse.Namespace) -> int:
    metadata_dir, _ = folders(args)
    catalog = load_sp_catalog(metadata_dir)
    print_rows(args, [_row(sp) for sp in catalog.sps.values()], ("name", "entity_id", "file", "allowed_upstreams"))
    report(catalog.problems)
    for view in disabled_sps(metadata_dir):
        print(f"note: {view.entity_id} ({view.file}) is disabled: not served until `broker sp enable`",
              file=sys.stderr)
    return 1 if catalog.problems else 0


def sp_remove(args: argparse.Namespace) -> int:
    metadata_dir, _ = folders(args)
    source = service(lambda: remove_sp(metadata_dir, args.entity_id))
    print(f"removed {source}")
    return 0


def _settings_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--display-name", help="the name citizens see (overrides the metadata's mdui:DisplayName)")
    p.add_argument("--logo-uri", help="the logo citizens see: an https URL or a data:image/...;base64 URI")
    p.add_argument("--policy-uri", help="the app's privacy policy (https), linked from the consent page")
    p.add_argument("--allowed-upstream", action="append", metavar="UPSTREAM",
                   help="an upstream the app may use, by name or SAML IdP entity id (repeatable; none: every one)")
    p.add_argument("--default-upstream", metavar="UPSTREAM",
                   help="the upstream used when a request names none (one of --allowed-upstream when given)")
    p.add_argument("--required-acr", metavar="ACR",
                   help="the weakest assurance the app accepts (a value of the [assurance] order or an alias)")
    p.add_argument("--receive", action="append", metavar="CLAIM",
                   help="a claim the app receives, instead of its metadata's RequestedAttributes (repeatable; "
                        "still capped by release_claims and the release policy; consent still applies)")
    p.add_argument("--required", action="append", metavar="CLAIM",
                   help="a claim the citizen cannot decline on the consent page (repeatable)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def add_commands(sub: Any) -> None:
    sp = sub.add_parser("sp", help="downstream SAML apps (service providers)").add_subparsers(dest="sp", required=True)
    p = sp.add_parser("add", help="validate and register an app's SAML metadata, with the operator's settings")
    p.add_argument("file", help="the app's SAML metadata (XML)")
    p.add_argument("--name", help="file name under metadata/saml-sp (default: the file's)")
    p.add_argument("--force", action="store_true", help="replace a file that registers other SPs")
    p.add_argument("--dry-run", action="store_true",
                   help="validate and print the changes against the current registration; write nothing")
    _settings_options(p)
    p.set_defaults(func=sp_add)
    p = sp.add_parser("set", help="change the operator's settings of a registered app")
    p.add_argument("entity_id", help="the app's entity id")
    _settings_options(p)
    p.add_argument("--clear", action="append", metavar="SETTING",
                   help=f"remove a setting, so the metadata or the default decides again (repeatable; one of "
                        f"{', '.join(SETTING_KEYS)})")
    p.set_defaults(func=sp_set)
    for command, text in (("enable", "serve a disabled app again"),
                          ("disable", "stop serving an app, keeping its files and settings (disabled = true)")):
        p = sp.add_parser(command, help=text)
        p.add_argument("entity_id", help="the app's entity id")
        p.set_defaults(func=sp_enable)
    p = sp.add_parser("list", help="the registered apps with their display names and settings")
    p.add_argument("--json", action="store_true", help="print the apps as JSON")
    p.set_defaults(func=sp_list)
    p = sp.add_parser("remove", help="unregister an app (its metadata file and settings)")
    p.add_argument("entity_id", help="the app's entity id")
    p.set_defaults(func=sp_remove)
