"""``broker client ...``: register downstream OpenID Connect clients by writing the same RFC 7591 client
metadata file an integrator would drop into ``metadata/oidc-clients/``, after validating it exactly as the
broker will when it loads the file.

For a confidential client the command makes the secret, writes only its hash, and prints the secret once;
or it takes the secret the app already has (``--client-secret-file``/``--client-secret-env``), checks that it
is strong enough, writes only its scrypt hash and never prints it. ``broker client import`` registers many
clients with their secrets at once (``broker.cli.client_import``).

Validation and writing are done by ``broker.registry.client_registrations``, which the operator console and the
admin API call too. ``broker client add --dry-run`` validates and prints the diff against the current
registration (one line per changed RFC 7591 member; ``--json``: a list of {party, field, before, after}) and
writes nothing: no secret is shown or kept (the diff shows that the hash would change).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from broker.cli.client_import import add_import_command
from broker.cli.parties import PartyError, _folders, _print, _print_changes, _report, _service
from broker.oidc.client import AUTH_METHODS, SIGNING_ALGS, OidcClient
from broker.oidc.client_metadata import SECRET_METHODS, client_metadata_document
from broker.oidc.client_secret import (
    MIN_SECRET_LENGTH,
    generate_secret,
    hash_generated,
    hash_provided,
    secret_problems,
)
from broker.registry.client_registrations import apply_client, preview_client, remove_client
from broker.registry.oidc_clients import CLIENT_FOLDER, drop_saml_collisions, load_oidc_clients
from broker.registry.saml_sps import load_sp_catalog


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


def provided_secret(args: argparse.Namespace) -> str | None:
    """The app's own secret from ``--client-secret-file`` (one trailing line break dropped) or
    ``--client-secret-env``, checked by ``secret_problems``; None when neither is given. Never echoed."""
    if args.client_secret_file is None and args.client_secret_env is None:
        return None
    if args.auth_method not in SECRET_METHODS:
        raise PartyError(f"--auth-method {args.auth_method} uses no client secret; --client-secret-file/-env are "
                         f"for {' and '.join(SECRET_METHODS)}")
    if args.client_secret_file is not None:
        where = f"--client-secret-file {args.client_secret_file}"
        try:
            secret = Path(args.client_secret_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise PartyError(f"cannot read {where}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError:  # its message would quote a byte of the secret
            raise PartyError(f"{where}: the client secret must be printable ASCII (RFC 6749 Appendix A.2)") from None
        secret = secret.removesuffix("\n").removesuffix("\r")
    else:
        where = f"--client-secret-env {args.client_secret_env}"
        secret = os.environ.get(args.client_secret_env, "")
        if args.client_secret_env not in os.environ:
            raise PartyError(f"{where}: the environment variable is not set")
    problems = secret_problems(secret)
    if problems:
        raise PartyError(f"{where}: {'; '.join(problems)}")
    return secret


def client_add(args: argparse.Namespace) -> int:
    metadata_dir, _ = _folders(args)
    raw = _metadata(args)
    own = provided_secret(args)
    secret = generate_secret() if own is None and args.auth_method in SECRET_METHODS else None
    if own is not None:
        raw["client_secret_hash"] = hash_provided(own)  # scrypt: it may be weaker than one we make
    elif secret is not None:
        raw["client_secret_hash"] = hash_generated(secret)
    preview = preview_client(metadata_dir, raw)
    target = metadata_dir / CLIENT_FOLDER / preview.file
    if preview.problems or preview.client is None:
        raise PartyError("; ".join(preview.problems))
    client = preview.client
    if preview.taken_by is not None:
        raise PartyError(f"client_id {client.client_id} is already registered by {preview.taken_by}; remove it first")
    if preview.saml_entity:
        raise PartyError(f"{client.client_id} is the entity id of a registered SAML SP; choose another client_id")
    if preview.exists and not args.force:
        raise PartyError(f"{target} exists; use --force to replace it (and issue a new secret)" if own is None
                         else f"{target} exists; use --force to replace it")
    if args.dry_run:  # the secret made above is dropped unseen: nothing is registered with it
        _print_changes(args, preview.changes, target)
        return 0
    _service(lambda: apply_client(metadata_dir, preview, replace_file=args.force))
    row: dict[str, Any] = {"client_id": client.client_id, "file": str(target)}
    if secret is not None:
        row["client_secret"] = secret
    if getattr(args, "json", False):
        _print(args, [row], ())
    else:
        print(f"registered client {client.client_id} in {target}")
        if secret is not None:
            print(f"client_secret: {secret}")
        elif own is not None:
            print("the client keeps the secret it was given; the file holds only its scrypt hash")
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
    target = _service(lambda: remove_client(metadata_dir, args.client_id))  # also a file the registry skips
    print(f"removed {target}")
    return 0


def add_commands(sub: Any) -> None:
    client = sub.add_parser("client", help="downstream OpenID Connect clients").add_subparsers(
        dest="client", required=True)
    p = client.add_parser("add", help="validate and register an OpenID Connect client (prints a new secret once, "
                                      "or keeps the app's own)")
    p.add_argument("--client-id", required=True, help="the client_id the app sends (RFC 6749 §2.2)")
    p.add_argument("--redirect-uri", action="append", required=True, help="exact redirect URI (repeatable)")
    p.add_argument("--post-logout-redirect-uri", action="append",
                   help="where the app may be sent after logout (repeatable)")
    p.add_argument("--name", help="display name (default: the client id)")
    p.add_argument("--auth-method", choices=AUTH_METHODS, default="client_secret_basic",
                   help="token endpoint authentication (none: a public client such as a native app)")
    secret = p.add_mutually_exclusive_group()
    secret.add_argument("--client-secret-file", metavar="FILE",
                        help="keep the app's existing secret, read from FILE (one trailing line break ignored); "
                             f"at least {MIN_SECRET_LENGTH} characters; stored as an scrypt hash, never printed")
    secret.add_argument("--client-secret-env", metavar="VAR",
                        help="keep the app's existing secret, read from the environment variable VAR (as "
                             "--client-secret-file)")
    p.add_argument("--jwks-file", help="JSON file with the client's public keys (for private_key_jwt)")
    p.add_argument("--scope", help='scopes the client may ask for (default: "openid profile email")')
    p.add_argument("--public-sub", action="store_true", help="the same subject for every client (default: pairwise)")
    p.add_argument("--alg", choices=SIGNING_ALGS, help="ID token signing algorithm (default: RS256)")
    p.add_argument("--refresh", action="store_true", help="allow refresh tokens (adds the offline_access scope)")
    p.add_argument("--allowed-upstream", action="extend", nargs="+", metavar="NAME",
                   help="upstreams the client may use (default: every one)")
    p.add_argument("--may-introspect", action="store_true", help="a resource server that may introspect tokens")
    p.add_argument("--force", action="store_true",
                   help="replace the client's file (with a new secret, unless one is given)")
    p.add_argument("--dry-run", action="store_true",
                   help="validate and print the changes against the current registration; write nothing and "
                        "make no secret")
    p.add_argument("--json", action="store_true", help="print the result as JSON (the secret included, if made)")
    p.set_defaults(func=client_add)
    add_import_command(client)
    p = client.add_parser("list", help="the registered clients, and the problems of files that were skipped")
    p.add_argument("--json", action="store_true", help="print each client's RFC 7591 metadata as JSON")
    p.set_defaults(func=client_list)
    p = client.add_parser("remove", help="delete a client's file")
    p.add_argument("client_id", help="the client_id of the client to remove")
    p.set_defaults(func=client_remove)
