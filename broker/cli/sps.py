"""``broker sp add|set|list|remove``: SAML apps, registered by writing the files an integrator would drop into
``metadata/saml-sp/`` (the metadata ``<stem>.xml`` and the operator's settings ``<stem>.toml``,
``broker.registry.sp_settings``), after validating both together exactly as the broker will load them."""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from broker.cli.common import settings_of
from broker.cli.parties import PartyError
from broker.cli.parties import _folders as folders
from broker.cli.parties import _print as print_rows
from broker.cli.parties import _report as report
from broker.core.display import looks_like_uri
from broker.registry.saml_sps import SP_FOLDER, load_sp_catalog
from broker.registry.sp_settings import SpSettingsError, parse_sp_settings, settings_path
from broker.registry.upstreams import load_upstreams
from broker.saml.catalog import SamlSp

#: a file name under metadata/saml-sp: no folders, no leading dot
_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}$")
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


def _validated(xml: Path, raw: dict[str, Any], name: str) -> dict[str, SamlSp]:
    """Load ``xml`` with the settings ``raw`` as ``<name>.xml`` in a scratch folder, as the registry would."""
    try:
        settings = parse_sp_settings(raw)
    except SpSettingsError as exc:
        raise PartyError(f"settings not valid: {exc}") from exc
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / SP_FOLDER
        folder.mkdir()
        shutil.copy(xml, folder / f"{name}.xml")  # the registry reads only *.xml, whatever the source is called
        text = settings.to_toml()
        if text:
            (folder / f"{name}.toml").write_text(text)
        catalog = load_sp_catalog(Path(scratch))
    if catalog.problems or not catalog.sps:
        raise PartyError("; ".join(catalog.problems) or f"{xml} describes no SAML service provider")
    return catalog.sps


def _write_settings(target_xml: Path, raw: dict[str, Any]) -> None:
    text = parse_sp_settings(raw).to_toml()
    path = settings_path(target_xml)
    if text:
        path.write_text(text)
    else:
        path.unlink(missing_ok=True)


def _notes(args: argparse.Namespace, raw: dict[str, Any]) -> None:
    """Notes, not errors (the broker loads the app either way): upstreams not registered (yet), and a
    ``required_acr`` outside the ``[assurance]`` scale, which only that exact value would ever meet."""
    settings = settings_of(args)
    acr = raw.get("required_acr")
    if isinstance(acr, str) and settings.assurance.rank(acr) is None:
        print(f"note: required_acr {acr!r} is not on the [assurance] scale (order or aliases): only an upstream "
              "answering exactly that value will meet it", file=sys.stderr)
    metadata_dir, instance_dir = settings.metadata_dir, settings.instance_dir
    known, _ = load_upstreams(metadata_dir, instance_dir)
    names = [*raw.get("allowed_upstreams", []), *([raw["default_upstream"]] if "default_upstream" in raw else [])]
    for name in dict.fromkeys(names):
        if name not in known and not looks_like_uri(name):
            print(f"note: no upstream named {name!r} is registered (yet); the app cannot use it until one is",
                  file=sys.stderr)


def _existing_raw(path: Path) -> dict[str, Any]:
    try:
        return dict(tomllib.loads(settings_path(path).read_text()))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PartyError(f"{settings_path(path)} is not readable TOML ({exc}); fix or remove it first") from exc


def sp_add(args: argparse.Namespace) -> int:
    metadata_dir, _ = folders(args)
    source = Path(args.file)
    if not source.is_file():
        raise PartyError(f"{source} does not exist")
    name = args.name.removesuffix(".xml") if args.name else re.sub(r"[^a-zA-Z0-9_.-]", "_", source.stem)
    if not _FILE_NAME_RE.match(name):
        raise PartyError(f"{name!r} is not a plain file name (letters, digits, '.', '-', '_'); choose one with --name")
    target = metadata_dir / SP_FOLDER / f"{name}.xml"
    raw = _changes(args, _existing_raw(target) if target.exists() else {})  # an update keeps the settings
    found = _validated(source, raw, name)
    registered = load_sp_catalog(metadata_dir).sps
    for entity_id in sorted(found):
        other = registered.get(entity_id)
        if other is not None and other.source.resolve() != target.resolve():
            raise PartyError(f"{entity_id} is already registered by {other.source.name}; replace that file "
                             f"(--name {other.source.stem}) or remove it first")
    replaced = sorted(e for e, sp in registered.items() if sp.source.resolve() == target.resolve())
    if replaced and replaced != sorted(found) and not args.force:
        raise PartyError(f"{target} exists and registers {', '.join(replaced)}; "
                         "choose another --name or use --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_settings(target, raw)  # settings first: the app is never served with the new metadata but old settings
    shutil.copy(source, target)
    _notes(args, raw)
    rows = [{"entity_id": e, "name": sp.display_name, "file": str(target)} for e, sp in sorted(found.items())]
    print_rows(args, rows, ("entity_id", "name", "file"))
    return 0


def _source_of(metadata_dir: Path, entity_id: str) -> Path:
    """The metadata file registering ``entity_id``, found even when its settings do not validate now."""
    sp = load_sp_catalog(metadata_dir).sps.get(entity_id)
    if sp is not None:
        return sp.source
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / SP_FOLDER).mkdir()
        for path in sorted((metadata_dir / SP_FOLDER).glob("*.xml")):
            shutil.copy(path, Path(scratch) / SP_FOLDER / path.name)
        found = load_sp_catalog(Path(scratch)).sps.get(entity_id)
    if found is None:
        raise PartyError(f"no registered SP has entity id {entity_id}")
    return metadata_dir / SP_FOLDER / found.source.name


def sp_set(args: argparse.Namespace) -> int:
    metadata_dir, _ = folders(args)
    source = _source_of(metadata_dir, args.entity_id)
    raw = _changes(args, _existing_raw(source))
    found = _validated(source, raw, source.stem)
    _write_settings(source, raw)
    _notes(args, raw)
    sp = found[args.entity_id]
    print_rows(args, [_row(sp)], ("entity_id", "name", "file"))
    return 0


def _row(sp: SamlSp) -> dict[str, Any]:
    return {"entity_id": sp.entity_id, "name": sp.display_name, "file": sp.source.name,
            "claims": sorted(sp.requested_claims), "allowed_upstreams": list(sp.allowed_upstreams),
            "default_upstream": sp.default_upstream, "required_acr": sp.required_acr}


def sp_list(args: argparse.Namespace) -> int:
    metadata_dir, _ = folders(args)
    catalog = load_sp_catalog(metadata_dir)
    print_rows(args, [_row(sp) for sp in catalog.sps.values()], ("name", "entity_id", "file", "allowed_upstreams"))
    report(catalog.problems)
    return 1 if catalog.problems else 0


def sp_remove(args: argparse.Namespace) -> int:
    metadata_dir, _ = folders(args)
    source = _source_of(metadata_dir, args.entity_id)
    settings_path(source).unlink(missing_ok=True)
    source.unlink()
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
    _settings_options(p)
    p.set_defaults(func=sp_add)
    p = sp.add_parser("set", help="change the operator's settings of a registered app")
    p.add_argument("entity_id", help="the app's entity id")
    _settings_options(p)
    p.add_argument("--clear", action="append", metavar="SETTING",
                   help=f"remove a setting, so the metadata or the default decides again (repeatable; one of "
                        f"{', '.join(SETTING_KEYS)})")
    p.set_defaults(func=sp_set)
    p = sp.add_parser("list", help="the registered apps with their display names and settings")
    p.add_argument("--json", action="store_true", help="print the apps as JSON")
    p.set_defaults(func=sp_list)
    p = sp.add_parser("remove", help="unregister an app (its metadata file and settings)")
    p.add_argument("entity_id", help="the app's entity id")
    p.set_defaults(func=sp_remove)
