"""Downstream OpenID Connect clients, registered by RFC 7591 §2 client-metadata JSON files in
``metadata/oidc-clients/`` (or ``broker client add``, which writes the same file)::

    {"client_id": "permits", "client_name": "Parking permits",
     "redirect_uris": ["https://permits.city.example.org/oidc/callback"],
     "client_secret_hash": "sha256:9f86d0..."}

A file holds the hash of the client's secret, never the secret, so the folder can live in git. Files are
written by the operator and trusted as such (``FILE_POLICY``); each is loaded on its own, and one that fails
is reported and skipped while the others stay registered.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from pathlib import Path

from broker.oidc.client import OidcClient
from broker.oidc.client_metadata import RegistrationPolicy, parse_client_metadata

log = logging.getLogger(__name__)
CLIENT_FOLDER = "oidc-clients"
FILE_POLICY = RegistrationPolicy(allowed_hosts=frozenset(), dynamic=False)


def client_source(path: Path) -> str:
    """The ``OidcClient.source`` of a client file: ``metadata/oidc-clients/<file>``."""
    return f"metadata/{CLIENT_FOLDER}/{path.name}"


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
