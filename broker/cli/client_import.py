"""``broker client import FILE.json``: many OpenID Connect clients at once, each keeping the secret it already
has, typically when apps move from another identity provider.

The file is a JSON list of RFC 7591 §2 client metadata documents, each with its ``client_id`` and, for
``client_secret_basic``/``client_secret_post``, its ``client_secret`` (RFC 6749 §2.3.1), as another provider's
registration endpoint or admin export gives them. Every document is checked first, exactly as the registry
will load the file written for it (``parse_client_metadata`` under the file policy) and its secret as
``broker client add --client-secret-file`` would (``secret_problems``); one problem anywhere and nothing is
written, and every problem is reported with the document's index and client_id. Then each client gets its own
file in ``metadata/oidc-clients/``, the RFC 7591 document the broker understands with the secret's scrypt hash
(``broker.oidc.client_secret``). Members the broker does not use (``client_secret_expires_at``,
``registration_access_token``, logos, ...) are not copied. Secrets are never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.cli.parties import PartyError, _folders, _print
from broker.oidc.client import OidcClient
from broker.oidc.client_metadata import SECRET_METHODS, ClientMetadataError, parse_client_metadata
from broker.oidc.client_secret import brought_secret_problems, hash_provided
from broker.registry.client_registrations import client_file_document
from broker.registry.oidc_clients import (
    CLIENT_FOLDER,
    FILE_POLICY,
    client_source,
    file_name,
    load_oidc_clients,
    write_client_file,
)
from broker.registry.saml_sps import load_sp_catalog

#: a migration of a few hundred apps is plenty; more is not an export of client registrations
MAX_CLIENTS = 1000
#: a well-formed hash that no secret is checked against: it lets a document whose secret was refused still have
#: the rest of its metadata checked, so every problem is reported at once
_STAND_IN_HASH = "sha256:" + "0" * 64


@dataclass(frozen=True)
class Checked:
    """One document that passed: the client as the registry will load it, and where it goes."""

    client: OidcClient
    target: Path


def _label(index: int, document: object) -> str:
    client_id = document.get("client_id") if isinstance(document, dict) else None
    shown = client_id if isinstance(client_id, str) and client_id.isprintable() and len(client_id) <= 80 else "?"
    return f"[{index}] {shown}"


def _check_one(index: int, document: object, metadata_dir: Path, problems: list[str]) -> Checked | None:
    """The client of ``document``, or None with its problems appended (each naming index and client_id)."""
    label = _label(index, document)
    if not isinstance(document, dict):
        problems.append(f"{label}: not a JSON object of client metadata (RFC 7591 §2)")
        return None
    raw = {k: v for k, v in document.items() if k not in ("client_secret", "client_secret_hash")}
    mine: list[str] = []
    if "client_secret_hash" in document:
        mine.append("client_secret_hash is not imported: give the app's client_secret, the broker hashes it")
    method = document.get("token_endpoint_auth_method", "client_secret_basic")
    secret = document.get("client_secret")
    if method in SECRET_METHODS or secret is not None:
        mine += brought_secret_problems(method, secret, SECRET_METHODS)
    if mine and method in SECRET_METHODS:  # fails anyway: check the rest of the metadata without scrypt work
        raw["client_secret_hash"] = _STAND_IN_HASH
    elif isinstance(secret, str) and method in SECRET_METHODS:
        raw["client_secret_hash"] = hash_provided(secret)
    client_id = document.get("client_id")
    target = metadata_dir / CLIENT_FOLDER / file_name(client_id if isinstance(client_id, str) else "")
    try:
        client = parse_client_metadata(raw, FILE_POLICY, client_id=None, source=client_source(target))
    except ClientMetadataError as exc:
        mine += exc.problems
        client = None
    problems += [f"{label}: {problem}" for problem in mine]
    return Checked(client, target) if client is not None and not mine else None


def check_documents(documents: list[Any], metadata_dir: Path, replace: bool) -> tuple[list[Checked], list[str]]:
    """Every document checked, and against what is registered already; the clients, or the problems."""
    problems: list[str] = []
    checked = [_check_one(i, d, metadata_dir, problems) for i, d in enumerate(documents)]
    registered, _ = load_oidc_clients(metadata_dir)
    entity_ids = load_sp_catalog(metadata_dir).sps
    first_at: dict[str, int] = {}
    for index, document in enumerate(documents):
        client_id = document.get("client_id") if isinstance(document, dict) else None
        if isinstance(client_id, str) and client_id in first_at:
            problems.append(f"{_label(index, document)}: client_id is also that of document [{first_at[client_id]}]")
        elif isinstance(client_id, str):
            first_at[client_id] = index
    for index, item in enumerate(checked):
        if item is None or first_at[item.client.client_id] != index:
            continue
        client_id, label = item.client.client_id, _label(index, documents[index])
        other = registered.get(client_id)
        occupant = next((c.client_id for c in registered.values() if c.source == item.client.source), client_id)
        if other is not None and other.source != item.client.source:
            problems.append(f"{label}: already registered by {other.source}; remove that registration first")
        elif occupant != client_id:
            problems.append(f"{label}: {item.target} registers another client ({occupant}); remove it first")
        elif item.target.exists() and not replace:
            problems.append(f"{label}: {item.target} exists; use --replace to overwrite it")
        if client_id in entity_ids:
            problems.append(f"{label}: client_id is the entity id of a registered SAML SP")
    return [c for c in checked if c is not None], problems


def client_import(args: argparse.Namespace) -> int:
    metadata_dir, _ = _folders(args)
    source = Path(args.file)
    try:
        documents = json.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PartyError(f"cannot read {source}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError:  # its message would quote a byte, perhaps of a secret
        raise PartyError(f"cannot read {source}: not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:  # the JSON error names a line and column, never the content
        raise PartyError(f"cannot read {source}: not JSON ({exc})") from exc
    if not isinstance(documents, list) or not documents:
        raise PartyError(f"{source} must hold a JSON list of RFC 7591 client metadata documents")
    if len(documents) > MAX_CLIENTS:
        raise PartyError(f"{source} lists {len(documents)} clients; at most {MAX_CLIENTS} at a time")
    checked, problems = check_documents(documents, metadata_dir, args.replace)
    if problems:
        raise PartyError(f"nothing imported: {len(problems)} problem(s) in {source}:\n  " + "\n  ".join(problems))
    rows = []
    for item in checked:
        write_client_file(item.target, client_file_document(item.client))
        rows.append({"client_id": item.client.client_id, "file": str(item.target)})
    if args.json:
        _print(args, rows, ())
    else:
        for row in rows:
            print(f"imported client {row['client_id']} in {row['file']}")
    print(f"{source} holds the secrets in plain text: delete it once the apps work through the broker.",
          file=sys.stderr)
    return 0


def add_import_command(client: Any) -> None:
    """``broker client import`` under the ``client`` subcommands."""
    p = client.add_parser("import", help="register many clients, each keeping its existing secret (a JSON list "
                                         "of RFC 7591 documents with client_id and client_secret)")
    p.add_argument("file", metavar="FILE.json",
                   help="JSON list of RFC 7591 client metadata documents, each with client_id and client_secret")
    p.add_argument("--replace", action="store_true",
                   help="overwrite clients already registered by the files this command writes")
    p.add_argument("--json", action="store_true", help="print the imported clients as JSON")
    p.set_defaults(func=client_import)
