"""``broker client ...``: register downstream OpenID Connect clients by writing the same RFC 7591 client
metadata file an integrator would drop into ``metadata/oidc-clients/``, after validating it exactly as the
broker will when it loads the file.

For a confidential client the command makes the secret, writes only its hash, and prints the secret once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

from broker.cli_parties import PartyError, _folders, _print, _report
from broker.oidc.client import AUTH_METHODS, SIGNING_ALGS, OidcClient, hash_secret
from broker.oidc.client_metadata import (
    SECRET_METHODS,
    ClientMetadataError,
    client_metadata_document,
    parse_client_metadata,
)
from broker.registry.oidc_clients import (
    CLIENT_FOLDER,
    FILE_POLICY,
    client_source,
    drop_saml_collisions,
    load_oidc_clients,
)
from broker.registry.saml_sps import load_sp_catalog


def file_name(client_id: str) -> str:
    """A plain file name for ``client_id``; a hash of the id is added when the id itself is not one, so two
    ids never share a file."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", client_id)[:80].lstrip(".-")
    if name != client_id:
        name = f"{name or 'client'}-{hashlib.sha256(client_id.encode()).hexdigest()[:8]}"
    return f"{name}.json"


def _metadata(args: argparse.Namespace) -> dict[str, Any]:
    raw: dict[str, Any] = {"client_id": args.client_id, "redirect_uris": args.redirect_uri,
                           "token_endpoint_auth_method": args.auth_method}
    if args.post_logout_redirect_uri:
        raw["post_logout_redirect_uris"] = args.post_logout_redirect_uri
    if args.name:
        raw["client_name"] = args.name
    if args.jwks_file:
        try:
            raw["jwks"] = json.loads(Path(args.jwks_file).read_text())
        except (OSError, ValueError) as exc:  # ValueError: not JSON or not UTF-8
            raise PartyError(f"cannot read --jwks-file {args.jwks_file}: {exc}") from exc
    scope = args.scope.split() if args.scope else ["openid", "profile", "email"]
    if args.refresh:
        raw["grant_types"] = ["authorization_code", "refresh_token"]
        scope += [] if "offline_access" in scope else ["offline_access"]  # OIDC Core §11
    raw["scope"] = " ".join(scope)
    if args.public_sub:
        raw["subject_type"] = "public"
    if args.alg:
        raw["id_token_signed_response_alg"] = args.alg
    if args.allowed_upstream:
        raw["allowed_upstreams"] = args.allowed_upstream
    if args.may_introspect:
        raw["may_introspect"] = True
    return raw


def _write(target: Path, document: dict[str, Any]) -> None:
    """Replace the file in one step, so the registry never reads half of it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
    try:
        os.chmod(scratch, 0o644)  # like every metadata file: it holds a hash, not the secret
        with os.fdopen(handle, "w") as out:
            out.write(json.dumps(document, indent=2) + "\n")
        os.replace(scratch, target)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


def client_add(args: argparse.Namespace) -> int:
    metadata_dir, _ = _folders(args)
    raw = _metadata(args)
    secret = secrets.token_urlsafe(32) if args.auth_method in SECRET_METHODS else None
    if secret is not None:
        raw["client_secret_hash"] = hash_secret(secret)
    target = metadata_dir / CLIENT_FOLDER / file_name(args.client_id)
    try:
        client = parse_client_metadata(raw, FILE_POLICY, client_id=None, source=client_source(target))
    except ClientMetadataError as exc:
        raise PartyError(str(exc)) from exc
    registered, _ = load_oidc_clients(metadata_dir)
    other = registered.get(client.client_id)
    if other is not None and other.source != client.source:
        raise PartyError(f"client_id {client.client_id} is already registered by {other.source}; remove it first")
    if client.client_id in load_sp_catalog(metadata_dir).sps:
        raise PartyError(f"{client.client_id} is the entity id of a registered SAML SP; choose another client_id")
    if target.exists() and not args.force:
        raise PartyError(f"{target} exists; use --force to replace it (and issue a new secret)")
    document = client_metadata_document(client)
    if client.client_secret_hash is not None:
        document["client_secret_hash"] = client.client_secret_hash
    _write(target, document)
    row: dict[str, Any] = {"client_id": client.client_id, "file": str(target)}
    if secret is not None:
        row["client_secret"] = secret
    if getattr(args, "json", False):
        _print(args, [row], ())
    else:
        print(f"registered client {client.client_id} in {target}")
        if secret is not None:
            print(f"client_secret: {secret}")
    if secret is not None:
        print("This secret is shown only this once and is not stored anywhere (the file holds only its hash): "
              "hand it to the client's operator now.", file=sys.stderr if args.json else sys.stdout)
    return 0


def _loaded(metadata_dir: Path) -> tuple[dict[str, OidcClient], list[str]]:
    clients, problems = load_oidc_clients(metadata_dir)
    if clients:
        problems += drop_saml_collisions(clients, load_sp_catalog(metadata_dir).sps)
    return clients, problems


def client_list(args: argparse.Namespace) -> int:
    metadata_dir, _ = _folders(args)
    clients, problems = _loaded(metadata_dir)
    rows = [{**client_metadata_document(c), "file": Path(c.source).name} for c in clients.values()]
    _print(args, rows, ("client_id", "client_name", "token_endpoint_auth_method", "file"))
    _report(problems)
    return 1 if problems else 0


def client_remove(args: argparse.Namespace) -> int:
    metadata_dir, _ = _folders(args)
    client = load_oidc_clients(metadata_dir)[0].get(args.client_id)
    if client is not None:
        target = metadata_dir / CLIENT_FOLDER / Path(client.source).name
    else:
        # a file the registry skips (broken, or a duplicate) still names its client_id
        named = [p for p in sorted((metadata_dir / CLIENT_FOLDER).glob("*.json")) if _names(p, args.client_id)]
        if len(named) != 1:
            raise PartyError(f"no OIDC client has client_id {args.client_id}" if not named else
                             f"several files register {args.client_id}: {', '.join(p.name for p in named)}")
        target = named[0]
    target.unlink()
    print(f"removed {target}")
    return 0


def _names(path: Path, client_id: str) -> bool:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(raw, dict) and raw.get("client_id") == client_id


def add_commands(sub: Any) -> None:
    client = sub.add_parser("client", help="downstream OpenID Connect clients").add_subparsers(
        dest="client", required=True)
    p = client.add_parser("add", help="validate and register an OpenID Connect client (prints its secret once)")
    p.add_argument("--client-id", required=True)
    p.add_argument("--redirect-uri", action="append", required=True, help="exact redirect URI (repeatable)")
    p.add_argument("--post-logout-redirect-uri", action="append", help="repeatable")
    p.add_argument("--name", help="display name (default: the client id)")
    p.add_argument("--auth-method", choices=AUTH_METHODS, default="client_secret_basic",
                   help="token endpoint authentication (none: a public client such as a native app)")
    p.add_argument("--jwks-file", help="JSON file with the client's public keys (for private_key_jwt)")
    p.add_argument("--scope", help='scopes the client may ask for (default: "openid profile email")')
    p.add_argument("--public-sub", action="store_true", help="the same subject for every client (default: pairwise)")
    p.add_argument("--alg", choices=SIGNING_ALGS, help="ID token signing algorithm (default: RS256)")
    p.add_argument("--refresh", action="store_true", help="allow refresh tokens (adds the offline_access scope)")
    p.add_argument("--allowed-upstream", action="extend", nargs="+", metavar="NAME",
                   help="upstreams the client may use (default: every one)")
    p.add_argument("--may-introspect", action="store_true", help="a resource server that may introspect tokens")
    p.add_argument("--force", action="store_true", help="replace the client's file, with a new secret")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=client_add)
    p = client.add_parser("list")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=client_list)
    p = client.add_parser("remove")
    p.add_argument("client_id")
    p.set_defaults(func=client_remove)
