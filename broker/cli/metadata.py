"""``broker metadata ...``: the broker's own metadata (IdP and SP roles) and the IdP metadata it consumes.

    broker metadata idp [--output FILE]      the broker's signed SAML IdP metadata (for apps)
    broker metadata sp [--output FILE]       the broker's signed SAML SP metadata (for upstream IdPs)
    broker metadata sources [--refresh] [--json]
                                             each IdP metadata source: entities, validity, last error;
                                             --refresh fetches and rebuilds every source now
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from broker.cli.common import JSON_HELP, settings_of


class MetadataCommandError(Exception):
    """Reported on stderr with exit status 1."""


def _write(args: argparse.Namespace, xml: str) -> None:
    if args.output:
        try:
            Path(args.output).write_text(xml)
        except OSError as exc:
            raise MetadataCommandError(f"cannot write {args.output}: {exc.strerror}") from exc
    else:
        sys.stdout.write(xml + "\n")


def cmd_own(args: argparse.Namespace) -> int:
    from broker.downstream.saml_server import IdpServers
    from broker.keys.keyring import load_keyring
    from broker.registry.saml_sps import load_sp_catalog
    from broker.upstream.saml_sp import SamlSp
    from broker.web.services import idp_settings, sp_settings

    settings = settings_of(args)
    keys = load_keyring(settings.certs_dir)
    if args.role == "sp":
        _write(args, SamlSp(sp_settings(settings, keys)).metadata_xml())
    else:
        _write(args, IdpServers(idp_settings(settings, keys)).metadata_xml(load_sp_catalog(settings.metadata_dir)))
    return 0


def cmd_sources(args: argparse.Namespace) -> int:
    from broker.registry.metadata_refresh import IdpDirectory

    settings = settings_of(args)
    directory = IdpDirectory(settings.metadata_dir, settings.instance_dir, settings.saml.metadata_cache_dir,
                             start_refresher=False)
    try:
        if args.refresh:
            directory.refresh_now()
        rows = [asdict(status) for status in directory.status()]
        problems = list(directory.problems())
        total = len(directory)
    finally:
        directory.close()
    if args.json:
        print(json.dumps({"sources": rows, "identity_providers": total, "problems": problems}, indent=2,
                         default=lambda value: value.isoformat()))
    else:
        for row in rows:
            print(_line(row))
        print(f"{total} identity providers")
        for problem in problems:
            print(f"problem: {problem}")
    return 1 if problems else 0


def _line(row: dict[str, Any]) -> str:
    state = "EXPIRED" if row["expired"] else f"valid until {row['valid_until'] or '(no validUntil)'}"
    error = f"; last error: {row['last_error']}" if row["last_error"] else ""
    return f"{row['name']}: {row['entities']} entities, {state}, next refresh {row['next_refresh']}{error}"


def add_commands(sub: Any) -> None:
    metadata = sub.add_parser("metadata", help="the broker's own metadata, and the IdP metadata it uses")
    roles = metadata.add_subparsers(dest="metadata", required=True)
    for role, text in (("idp", "the broker's signed IdP metadata, for apps"),
                       ("sp", "the broker's signed SP metadata, for upstream IdPs")):
        p = roles.add_parser(role, help=text)
        p.add_argument("--output", help="write to this file instead of stdout")
        p.set_defaults(func=cmd_own, role=role)
    p = roles.add_parser("sources", help="IdP metadata sources: entities, validity, errors")
    p.add_argument("--refresh", action="store_true", help="fetch and rebuild every source now")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_sources)
