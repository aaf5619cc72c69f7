"""Downstream OpenID Connect clients, registered by RFC 7591 §2 client-metadata JSON files in
``metadata/oidc-clients/`` (or ``broker client add|import``, which write the same file)::

    {"client_id": "permits", "client_name": "Parking permits",
     "redirect_uris": ["https://permits.city.example.org/oidc/callback"],
     "client_secret_hash": "sha256:9f86d0..."}

A file holds the hash of the client's secret, never the secret, so the folder can live in git
(``broker.oidc.client_secret`` describes both hash forms: ``sha256:`` and ``scrypt$``). Files are
written by the operator and trusted as such (``FILE_POLICY``); each is loaded on its own, and one that fails
is reported and skipped while the others stay registered.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

from broker.oidc.client import OidcClient
from broker.oidc.client_metadata import RegistrationPolicy, parse_client_metadata

log = logging.getLogger(__name__)
CLIENT_FOLDER = "oidc-clients"
FILE_POLICY = RegistrationPolicy(allowed_hosts=frozenset(), dynamic=False)


def client_source(path: Path) -> str:
    """The ``OidcClient.source`` of a client file: ``metadata/oidc-clients/<file>``."""
    return f"metadata/{CLIENT_FOLDER}/{path.name}"


def file_name(client_id: str) -> str:
    """A plain file name for ``client_id``; a hash of the id is added when the id itself is not one, so two
    ids never share a file."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", client_id)[:80].lstrip(".-")
    if name != client_id:
        name = f"{name or 'client'}-{hashlib.sha256(client_id.encode()).hexdigest()[:8]}"
    return f"{name}.json"


def write_client_file(target: Path, document: dict[str, Any]) -> None:
    """Write a client's file (``broker client add``/``import``), replacing it in one step so the registry never
    reads half of it. Mode 0644 like every metadata file: it holds a secret's hash, never the secret."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
    try:
        os.chmod(scratch, 0o644)
        with os.fdopen(handle, "w") as out:
            out.write(json.dumps(document, indent=2) + "\n")
        os.replace(scratch, target)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


def load_oidc_clients(metadata_dir: Path) -> tuple[dict[str, OidcClient], list[str]]:
    """Every valid client by client_id, and a problem line for each file skipped."""
    found: dict[str, OidcClient] = {}
    problems: list[str] = []
    for path in sorted((metadata_dir / CLIENT_FOLDER).glob("*.json")):
        try:
            client = parse_client_metadata(json.loads(path.read_text()), FILE_POLICY, client_id=None,
                                           source=client_source(path))
        except (OSError, ValueError) as exc:  # ValueError: bad JSON, not UTF-8, or a ClientMetadataError
            problems.append(f"{path.name}: {exc}")
            continue
        except RecursionError:  # JSON nested deeper than the decoder can go: one bad file, not a dead registry
            problems.append(f"{path.name}: JSON nested too deeply")
            continue
        if client.client_id in found:
            first = Path(found[client.client_id].source).name
            problems.append(f"{path.name}: client_id {client.client_id} is already registered by {first}; skipped")
            continue
        found[client.client_id] = client
    for problem in problems:
        log.warning("OIDC client skipped: %s", problem)
    return found, problems


def drop_saml_collisions(clients: dict[str, OidcClient], entity_ids: Collection[str]) -> list[str]:
    """Remove the clients whose client_id is a registered SAML entity id (a downstream party id names one
    party); a problem line for each."""
    problems = []
    for client_id in sorted(set(clients) & set(entity_ids)):
        name = Path(clients.pop(client_id).source).name
        problems.append(f"{name}: client_id {client_id} is the entity id of a registered SAML SP; skipped")
    for problem in problems:
        log.warning("OIDC client skipped: %s", problem)
    return problems
