"""OpenID Connect clients: preview, diff, apply and remove, for ``broker client``, the operator console and the
admin API alike (``broker.registry.registrations`` describes the family).

A client is one RFC 7591 §2 client metadata file in ``metadata/oidc-clients/``, named after its client_id
(``file_name``). A preview validates the document with ``parse_client_metadata`` under the file policy, exactly
as the registry loads the file (``load_oidc_clients``), and says what the file registers today, whether another
file registers the client_id, and whether it is a registered SAML app's entity id (one id, one party). A
confidential client's document carries ``client_secret_hash`` (``broker.oidc.client_secret``), never the
secret: the caller makes or takes the secret and hashes it first, as ``broker client add`` does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from broker.oidc.client import OidcClient
from broker.oidc.client_metadata import ClientMetadataError, client_metadata_document, parse_client_metadata
from broker.registry.oidc_clients import (
    CLIENT_FOLDER,
    FILE_POLICY,
    client_source,
    file_name,
    load_oidc_clients,
    write_client_file,
)
from broker.registry.registrations import Change, NotRegistered, RegistrationRefused, diff_fields
from broker.registry.saml_sps import load_sp_catalog

#: RFC 7591 §2 client metadata: a JSON object, as parsed or as text
MetadataInput = Mapping[str, Any] | str | bytes


@dataclass(frozen=True)
class ClientPreview:
    """What registering ``metadata`` would do. ``problems``: why the registry would not load it (then
    ``client`` is None and nothing may be applied)."""

    #: the document as JSON text; ``apply_client`` validates it again
    metadata: str = field(repr=False)
    #: its file under metadata/oidc-clients/
    file: str
    client: OidcClient | None
    problems: tuple[str, ...]
    #: what the file registers today, for the diff
    current: OidcClient | None = None
    #: the file (``OidcClient.source``) of another registration of the same client_id
    taken_by: str | None = None
    #: the client_id is the entity id of a registered SAML app
    saml_entity: bool = False
    #: the file exists: applying replaces it (``replace_file=True``)
    exists: bool = False

    @property
    def changes(self) -> tuple[Change, ...]:
        return diff_client(self.current, self.client)


def _decoded(metadata: MetadataInput) -> tuple[object, str, tuple[str, ...]]:
    """The document, its JSON text, and why it is not JSON."""
    if isinstance(metadata, str | bytes):
        try:
            raw = json.loads(metadata)
        except UnicodeDecodeError:
            return None, "", ("client metadata must be UTF-8 JSON text",)
        except (ValueError, RecursionError) as exc:  # the JSON error names a line and column, never the content
            return None, "", (f"client metadata is not JSON ({type(exc).__name__}: {exc})",)
        return raw, json.dumps(raw), ()
    try:
        return dict(metadata), json.dumps(dict(metadata)), ()
    except (TypeError, ValueError) as exc:
        return None, "", (f"client metadata is not JSON-shaped ({exc})",)


def preview_client(metadata_dir: Path, metadata: MetadataInput) -> ClientPreview:
    """Validate RFC 7591 §2 ``metadata`` exactly as the registry will load its file (untrusted input: every
    problem is listed, nothing is raised), and check it against the clients and SAML apps registered now."""
    raw, text, problems = _decoded(metadata)
    client_id = raw.get("client_id") if isinstance(raw, dict) else None
    name = file_name(client_id if isinstance(client_id, str) else "")
    target = metadata_dir / CLIENT_FOLDER / name
    registered, _ = load_oidc_clients(metadata_dir)
    current = next((c for c in registered.values() if c.source == client_source(target)), None)
    if problems:
        return ClientPreview(text, name, None, problems, current, exists=target.exists())
    try:
        client = parse_client_metadata(raw, FILE_POLICY, client_id=None, source=client_source(target))
    except ClientMetadataError as exc:
        return ClientPreview(text, name, None, exc.problems, current, exists=target.exists())
    except (ValueError, TypeError, RecursionError) as exc:
        return ClientPreview(text, name, None, (f"not usable client metadata ({type(exc).__name__})",), current,
                             exists=target.exists())
    other = registered.get(client.client_id)
    return ClientPreview(
        text, name, client, (), current, taken_by=other.source if other is not None and other.source != client.source
        else None, saml_entity=client.client_id in load_sp_catalog(metadata_dir).sps, exists=target.exists())


def _thumbprints(jwks: str) -> list[str]:
    """The keys of a ``jwks`` by their RFC 7638 thumbprints."""
    try:
        return [str(key.thumbprint()) for key in KeySet.import_key_set(json.loads(jwks)).keys]
    except (JoseError, ValueError, TypeError, KeyError):
        return [f"sha256 {hashlib.sha256(jwks.encode()).hexdigest()[:16]}"]


def _shown(client: OidcClient | None) -> dict[str, object]:
    if client is None:
        return {}
    shown: dict[str, object] = client_metadata_document(client)
    if client.jwks is not None:
        shown["jwks"] = [f"key {t}" for t in _thumbprints(client.jwks)]
    if client.client_secret_hash is not None:  # not the hash itself: enough to see that it changes
        shown["client_secret_hash"] = f"hashed ({hashlib.sha256(client.client_secret_hash.encode()).hexdigest()[:12]})"
    return shown


def diff_client(current: OidcClient | None, proposed: OidcClient | None) -> tuple[Change, ...]:
    """What changes, RFC 7591 §2 member by member (None: not registered, before or after); keys by their
    RFC 7638 thumbprints, the secret only as "hashed (...)"."""
    shown = proposed or current
    return diff_fields(shown.client_id, _shown(current), _shown(proposed)) if shown is not None else ()


def client_file_document(client: OidcClient) -> dict[str, Any]:
    """What a client's file holds: its RFC 7591 §2 metadata and the hash of its secret, if any."""
    document = client_metadata_document(client)
    if client.client_secret_hash is not None:
        document["client_secret_hash"] = client.client_secret_hash
    return document


def apply_client(metadata_dir: Path, preview: ClientPreview, *, replace_file: bool = False) -> OidcClient:
    """Write the previewed client's file, validated again against the folder as it is now (one step: a temporary
    file then a rename); ``RegistrationRefused`` and nothing written when it would not load, or clashes."""
    if preview.problems:
        raise RegistrationRefused(preview.problems)
    fresh = preview_client(metadata_dir, preview.metadata)
    if fresh.problems or fresh.client is None:
        raise RegistrationRefused(fresh.problems or ("not usable client metadata",))
    client_id, refusals = fresh.client.client_id, []
    if fresh.taken_by is not None:
        refusals.append(f"client_id {client_id} is already registered by {fresh.taken_by}; remove it first")
    if fresh.saml_entity:
        refusals.append(f"{client_id} is the entity id of a registered SAML SP; choose another client_id")
    if fresh.exists and not replace_file:
        refusals.append(f"{fresh.file} exists: replace it explicitly (replace_file)")
    if refusals:
        raise RegistrationRefused(refusals)
    write_client_file(metadata_dir / CLIENT_FOLDER / fresh.file, client_file_document(fresh.client))
    return fresh.client


def remove_client(metadata_dir: Path, client_id: str) -> Path:
    """Delete the file of ``client_id``, also one the registry skips (broken, or a duplicate) that names it;
    the path deleted. ``NotRegistered`` when no file does, ``RegistrationRefused`` when several do."""
    client = load_oidc_clients(metadata_dir)[0].get(client_id)
    if client is not None:
        target = metadata_dir / CLIENT_FOLDER / Path(client.source).name
    else:
        named = [p for p in sorted((metadata_dir / CLIENT_FOLDER).glob("*.json")) if _names(p, client_id)]
        if not named:
            raise NotRegistered([f"no OIDC client has client_id {client_id}"])
        if len(named) > 1:
            raise RegistrationRefused([f"several files register {client_id}: {', '.join(p.name for p in named)}"])
        target = named[0]
    target.unlink()
    return target


def _names(path: Path, client_id: str) -> bool:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(raw, dict) and raw.get("client_id") == client_id
