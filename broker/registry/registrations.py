"""What the registration services share: the ``broker sp|client|upstream`` commands, the operator console and
the admin API register parties through the same functions, which validate exactly as the registry loads,
show a diff against the current registration, and write the same files an integrator would drop in.

One module per protocol, none of them printing or parsing arguments:

- ``broker.registry.sp_registrations``: SAML apps (metadata XML and the operator's settings TOML);
- ``broker.registry.client_registrations``: OpenID Connect clients (RFC 7591 §2 client metadata JSON);
- ``broker.registry.upstream_registrations``: upstream identity providers (``metadata/upstreams/*.json``).

Each has ``preview_*`` (never raises for bad input: the problems are listed), ``diff_*`` (``Change`` rows),
``apply_*`` (validates again, then writes atomically; ``RegistrationRefused`` and nothing written when it would
not load) and ``remove_*``.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from broker.core.party_admin import Change as Change

#: a file name under metadata/<folder>: no folders, no leading dot
_FILE_STEM_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}$")


class RegistrationRefused(ValueError):
    """A registration that would not load, or that clashes with another; nothing was written. The message
    lists every problem; ``problems`` holds them one by one."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


class NotRegistered(RegistrationRefused):
    """No registration answers to that id (an entity id, a client_id, an upstream's name)."""


def is_plain_stem(stem: str) -> bool:
    """Whether ``stem`` can name a file in a metadata folder: letters, digits, '.', '-', '_', no leading dot."""
    return bool(_FILE_STEM_RE.match(stem))


def readable(value: object) -> str | None:
    """A field's value as the diff shows it: None for absent or empty, lists joined by ", ", true/false."""
    if value is None or value == "" or (isinstance(value, list | tuple | set | frozenset) and not value):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, set | frozenset):
        return ", ".join(sorted(str(v) for v in value))
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={readable(v)}" for k, v in sorted(value.items()))
    return str(value)


def diff_fields(party: str, before: Mapping[str, object], after: Mapping[str, object]) -> tuple[Change, ...]:
    """A ``Change`` for each field whose readable value differs, in the order the fields first appear."""
    changes = []
    for name in dict.fromkeys([*before, *after]):
        old, new = readable(before.get(name)), readable(after.get(name))
        if old != new:
            changes.append(Change(party, name, old, new))
    return tuple(changes)


def write_atomically(target: Path, data: bytes) -> None:
    """Write ``target`` in one step: a temporary file in the same folder, then ``os.replace``, so the registry
    (which re-reads the folder at any moment) never reads half a file. Mode 0644 like every metadata file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
    try:
        os.chmod(scratch, 0o644)
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(scratch, target)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
