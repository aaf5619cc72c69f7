"""Upstream identity providers as the operator console and the admin API register them (issue 19; README
"Registering parties": OpenID Connect providers, presets, SAML IdPs by entity id): ``upstream_registrations``
(the service ``broker upstream add|remove`` uses) seen through ``core.party_admin``.

The document is the registration JSON ``metadata/upstreams/<name>.json`` holds. It names where the secret lives
(``client_secret_env``, ``client_secret_file``), never the secret: a document carrying ``client_secret`` is
refused by the preview, so it is neither written nor kept for "Apply". ``describe`` is the check the registry
makes before it serves an upstream (``FileRegistry``'s ``describe``: the adapter's settings for OpenID Connect
and OAuth 2.0, ``broker.upstream.factory.describe``); a document it refuses is refused here too. Upstreams have
no "disabled" setting in the registry, so they are not switched off and on: they are removed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from broker.core.model import UpstreamParty
from broker.core.party_admin import AppEntry, AppKind, AppPreview, RegistrationRefused
from broker.registry import registrations
from broker.registry.upstream_registrations import UpstreamPreview, apply_upstream, preview_upstream, remove_upstream
from broker.registry.upstreams import UPSTREAM_FOLDER, UpstreamRegistration, load_upstreams

#: what the registry calls to see an upstream as the core does; ``ValueError`` when it could not serve it
Describe = Callable[[UpstreamRegistration], UpstreamParty]


def upstream_entries(metadata_dir: Path, instance_dir: Path, describe: Describe) -> list[AppEntry]:
    """The upstreams the registry serves (those it would skip are ``broker check``'s problems)."""
    found, _ = load_upstreams(metadata_dir, instance_dir)
    entries = []
    for name, registration in found.items():
        try:
            display_name = describe(registration).display_name
        except ValueError:
            continue
        file = registration.source.name if registration.source else f"{name}.json"
        entries.append(AppEntry(AppKind.UPSTREAM, name, display_name, file))
    return entries


def preview(metadata_dir: Path, instance_dir: Path, describe: Describe, document: bytes) -> AppPreview:
    return _shown(preview_upstream(metadata_dir, instance_dir, document, check=describe), describe)


def apply(metadata_dir: Path, instance_dir: Path, describe: Describe, document: bytes) -> AppPreview:
    """Validated again, then ``<name>.json`` written (replaced when it exists); ``RegistrationRefused``."""
    shown = preview_upstream(metadata_dir, instance_dir, document, check=describe)
    answer = _shown(shown, describe)
    if answer.problems:
        raise RegistrationRefused(answer.problems)
    try:
        apply_upstream(metadata_dir, instance_dir, shown, replace_file=shown.exists, check=describe)
    except registrations.RegistrationRefused as exc:
        raise RegistrationRefused(exc.problems) from exc
    return answer


def remove(metadata_dir: Path, name: str) -> None:
    try:
        remove_upstream(metadata_dir, name)
    except registrations.RegistrationRefused as exc:
        raise RegistrationRefused(exc.problems) from exc


def _shown(shown: UpstreamPreview, describe: Describe) -> AppPreview:
    problems = list(shown.problems)
    if not problems and shown.taken_by is not None:
        problems.append(f"{UPSTREAM_FOLDER}/{shown.taken_by} registers the name {shown.name} already; "
                        "remove it first")
    registration = shown.registration
    facts = _facts(shown.document, registration, describe) if registration is not None and not problems else []
    return AppPreview(AppKind.UPSTREAM, (shown.name,) if shown.name else (), shown.file, tuple(problems),
                      shown.changes if not problems else (), tuple(facts), replaces=shown.exists)


def _facts(document: str, registration: UpstreamRegistration, describe: Describe) -> list[tuple[str, str]]:
    party = describe(registration)  # it passed the very same check in the preview
    facts = [("Name", registration.name), ("Protocol", registration.protocol), ("Citizens see", party.display_name)]
    if registration.protocol == "saml":
        facts.append(("Entity ID", party.issuer))
    else:
        facts += [("Issuer", party.issuer), ("Client ID", registration.client_id)]
        if registration.preset:
            facts.append(("Preset", registration.preset))
        facts.append(("Client secret from", _secret_source(document, registration)))
    facts += [("Scope", " ".join(registration.scopes))] if registration.scopes else []
    facts += [(f"Option {key}", ", ".join(value) if isinstance(value, tuple) else value)
              for key, value in registration.options if not key.endswith("_file")]
    return facts


def _secret_source(document: str, registration: UpstreamRegistration) -> str:
    """Where the secret is read from, never the secret (the preview read it to check that it is there)."""
    raw = json.loads(document)  # the preview's own text of a document that validated
    named = [f"{key} {raw[key]}" for key in ("client_secret_env", "client_secret_file") if raw.get(key)]
    return ", ".join(named) or ("none: the preset makes its own" if not registration.client_secret else "-")
