"""Upstream identity providers: preview, diff, apply and remove, for ``broker upstream``, the operator console
and the admin API alike (``broker.registry.registrations`` describes the family).

An upstream is one JSON file, ``metadata/upstreams/<name>.json`` (``broker.registry.upstreams`` describes it).
A preview validates the document with ``parse_registration``, as the registry loads it, then with ``check``:
the adapter's own settings check, which the broker also makes before it serves the upstream (the caller
passes it, ``broker.upstream.factory.describe`` for OpenID Connect and OAuth 2.0: the registry does not import
the upstream adapters). The diff compares the documents, which name where the secret lives, never the secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker.registry.registrations import Change, NotRegistered, RegistrationRefused, diff_fields, write_atomically
from broker.registry.upstreams import NAME_RE, UPSTREAM_FOLDER, UpstreamRegistration, parse_registration

#: a registration document: a JSON object, as parsed or as text
DocumentInput = Mapping[str, Any] | str | bytes
#: the adapter's check of a registration: raises ``ValueError`` when the broker could not use it
Check = Callable[[UpstreamRegistration], object]


@dataclass(frozen=True)
class UpstreamPreview:
    """What registering ``document`` would do. ``problems``: why the broker would not use it (then
    ``registration`` is None and nothing may be applied)."""

    #: the file's text as it would be written; ``apply_upstream`` validates it again
    document: str = field(repr=False)
    name: str
    registration: UpstreamRegistration | None
    problems: tuple[str, ...]
    #: the text of ``<name>.json`` today, for the diff
    current: str | None = None
    #: another file that registers the same name (two files of one name are both skipped)
    taken_by: str | None = None
    #: the file exists: applying replaces it (``replace_file=True``)
    exists: bool = False

    @property
    def file(self) -> str:
        return f"{self.name}.json"

    @property
    def changes(self) -> tuple[Change, ...]:
        return diff_upstream(self.name, self.current, self.document if self.registration is not None else None)


def _object(text: str | None) -> dict[str, object]:
    try:
        raw = json.loads(text) if text is not None else {}
    except (ValueError, RecursionError):
        return {"file": "not JSON"}
    return raw if isinstance(raw, dict) else {"file": "not a JSON object"}


def _decoded(document: DocumentInput) -> tuple[dict[str, Any], tuple[str, ...]]:
    try:
        raw = json.loads(document) if isinstance(document, str | bytes) else dict(document)
        json.dumps(raw)
    except (ValueError, TypeError, RecursionError) as exc:
        return {}, (f"the registration is not a JSON object ({type(exc).__name__})",)
    if not isinstance(raw, dict):
        return {}, ("the file must hold one JSON object",)
    return raw, ()


def _names(path: Path, name: str) -> bool:
    return path.is_file() and _object(_read(path)).get("name") == name


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def preview_upstream(metadata_dir: Path, instance_dir: Path, document: DocumentInput, *, check: Check | None = None,
                     environ: Mapping[str, str] | None = None) -> UpstreamPreview:
    """Validate ``document`` as the broker will load ``metadata/upstreams/<name>.json`` (untrusted input: the
    problem is listed, nothing is raised). ``environ``: where ``client_secret_env`` is looked up (default: this
    process's environment, which must be the broker's)."""
    raw, problems = _decoded(document)
    text = json.dumps(raw, indent=2) + "\n"
    name = raw.get("name")
    if not problems and not (isinstance(name, str) and NAME_RE.fullmatch(name)):
        problems = ("name must be 1-63 lowercase letters, digits, '-' or '_'",)
    if "client_secret" in raw:  # for every protocol: a secret is never written into metadata/ (nor shown back)
        problems = (*problems, "the document carries client_secret: a secret is never written in a registration; "
                               "name where it lives with client_secret_env or client_secret_file")
    if problems:
        return UpstreamPreview(text, str(name or ""), None, problems)
    target = metadata_dir / UPSTREAM_FOLDER / f"{name}.json"
    other = next((p.name for p in sorted((metadata_dir / UPSTREAM_FOLDER).glob("*.json"))
                  if p.name != target.name and _names(p, str(name))), None)
    current = _read(target)
    try:
        registration = parse_registration(raw, instance_dir, environ, source=target)
        if check is not None:
            check(registration)  # the adapter's settings, as the registry builds them (``FileRegistry._load``)
    except ValueError as exc:  # RegistrationError is a ValueError
        return UpstreamPreview(text, str(name), None, (str(exc),), current, other, target.exists())
    return UpstreamPreview(text, str(name), registration, (), current, other, target.exists())


def diff_upstream(name: str, current: str | None, proposed: str | None) -> tuple[Change, ...]:
    """What changes in the registration document, member by member (None: no file, before or after)."""
    if current is None and proposed is None:
        return ()
    return diff_fields(name, _object(current), _object(proposed))


def apply_upstream(metadata_dir: Path, instance_dir: Path, preview: UpstreamPreview, *, replace_file: bool = False,
                   check: Check | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """Write ``metadata/upstreams/<name>.json``, validated again (one step: a temporary file then a rename); the
    path. ``RegistrationRefused`` and nothing written when it would not load, or clashes."""
    if preview.problems:
        raise RegistrationRefused(preview.problems)
    fresh = preview_upstream(metadata_dir, instance_dir, preview.document, check=check, environ=environ)
    refusals = list(fresh.problems)
    if not refusals and fresh.taken_by is not None:
        refusals.append(f"{fresh.taken_by} registers the name {fresh.name} already; remove it first")
    if not refusals and fresh.exists and not replace_file:
        refusals.append(f"{fresh.file} exists: replace it explicitly (replace_file)")
    if refusals:
        raise RegistrationRefused(refusals)
    target = metadata_dir / UPSTREAM_FOLDER / fresh.file
    write_atomically(target, fresh.document.encode())
    return target


def remove_upstream(metadata_dir: Path, name: str) -> Path:
    """Delete the file registering ``name`` (``<name>.json``, else the one file whose ``name`` it is); the path
    deleted. ``NotRegistered`` when no file does, ``RegistrationRefused`` when several do."""
    target = metadata_dir / UPSTREAM_FOLDER / f"{name}.json"
    if not NAME_RE.fullmatch(name) or not target.exists():  # never a path outside the folder
        # a file dropped in by hand may be called differently from the name it registers
        named = [path for path in sorted((metadata_dir / UPSTREAM_FOLDER).glob("*.json")) if _names(path, name)]
        if not named:
            raise NotRegistered([f"no upstream named {name}"])
        if len(named) > 1:
            raise RegistrationRefused([f"several files register {name}: {', '.join(p.name for p in named)}"])
        target = named[0]
    target.unlink()
    return target
