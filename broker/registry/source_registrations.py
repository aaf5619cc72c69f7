"""``core.source_admin.MetadataSourceFiles`` over the instance's folders: adding and removing IdP metadata sources
from the operator console and the admin API (issue 19; README "SAML identity providers and federations").

A preview checks the submission as the IdP directory will load it (``source_checks``) and compares it with the
source of that name today; applying checks again and writes each file in one step (``registrations.
write_atomically``), the certificate before the file that names it, so the directory (which rescans at any moment)
never reads a source whose pin is missing; then the directory takes the change up at once in this process (a
rescan, and a refresh of a replaced source, waited for a bounded time; a feed is fetched then), and the other
processes of the instance on their next poll.

- An IdP file without a certificate keeps the sidecar ``<name>.pem`` of the file it replaces, and is checked
  against it: a pinned file is never turned into an unchecked one by an upload (remove the source to unpin it).
- Removing an IdP file deletes ``<name>.xml`` before ``<name>.pem`` (the other order would, for a moment, leave an
  unchecked file the directory trusts). Removing a federation deletes its TOML, then its pinned certificate when it
  is the one this module writes (``certs/federations/<name>.pem``) and no other source pins it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import tomllib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broker.core.source_admin import (
    MAX_SOURCE_DOCUMENT,
    MetadataSourceFiles,
    RegistrationRefused,
    SourceDraft,
    SourceKind,
    SourcePreview,
    SourceRemoved,
)
from broker.registry.metadata_refresh import IdpDirectory
from broker.registry.metadata_sources import FEDERATION_FOLDER, IDP_FOLDER, MIN_REFRESH, load_sources
from broker.registry.registrations import Change, diff_fields, is_plain_stem, write_atomically
from broker.registry.source_checks import CERT_FOLDER, Checked, check_federation, check_idp_file, federation_toml
from broker.registry.source_checks import fingerprint as cert_fingerprint
from broker.registry.upstreams import NAME_RE

log = logging.getLogger(__name__)
#: at most this many added or removed entity ids are named in a diff
_LISTED = 20


class FileSources:
    def __init__(self, metadata_dir: Path, instance_dir: Path, directory: IdpDirectory | None, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 wait: timedelta = timedelta(seconds=20)) -> None:
        self._metadata, self._instance, self._directory = metadata_dir, instance_dir, directory
        self._clock, self._wait = clock, wait.total_seconds()
        self._lock = threading.Lock()  # one write at a time in this process

    # -- the files of a source --------------------------------------------------------------------------------
    def _files(self, kind: SourceKind, name: str) -> tuple[Path, Path]:
        """The source file and its certificate."""
        if kind is SourceKind.IDP_FILE:
            folder = self._metadata / IDP_FOLDER
            return folder / f"{name}.xml", folder / f"{name}.pem"
        return self._metadata / FEDERATION_FOLDER / f"{name}.toml", self._instance / CERT_FOLDER / f"{name}.pem"

    def _shown(self, paths: Iterable[Path]) -> tuple[str, ...]:
        return tuple(str(p.relative_to(self._instance)) if p.is_relative_to(self._instance) else str(p) for p in paths)

    # -- preview ----------------------------------------------------------------------------------------------
    def preview(self, draft: SourceDraft) -> SourcePreview:
        refused = _form_problems(draft)
        if refused:
            return SourcePreview(draft.kind, draft.source_name, (), tuple(refused))
        source, cert_path = self._files(draft.kind, draft.name)
        replaces = source.is_file()
        now = self._clock()
        if draft.kind is SourceKind.IDP_FILE:
            certificate = draft.certificate or (_read(cert_path) if replaces else None)
            checked = check_idp_file(draft.name, draft.document or b"", certificate, now)
            before = check_idp_file(draft.name, _read(source) or b"", _read(cert_path), now) if replaces else None
            changes = _idp_changes(draft.source_name, before, checked, _read(source), draft.document or b"",
                                   _read(cert_path), certificate)
            written = (cert_path, source) if draft.certificate else (source,)
        else:
            toml = federation_toml(draft.name, draft.url or "", draft.refresh_interval)
            checked = check_federation(draft.name, toml, draft.certificate or b"", now)
            checked = Checked((*checked.problems, *self._pinned_elsewhere(draft.name, cert_path)), checked.notes,
                              facts=checked.facts)
            changes = diff_fields(draft.source_name, _federation_fields(source, self._instance),
                                  _federation_fields_of(toml, draft.certificate or b""))
            written = (cert_path, source)
        return SourcePreview(draft.kind, draft.source_name, self._shown(written), checked.problems, checked.notes,
                             checked.entities, checked.entity_count, checked.facts, changes, replaces)

    def _pinned_elsewhere(self, name: str, cert_path: Path) -> list[str]:
        specs, _ = load_sources(self._metadata, self._instance)
        return [f"{spec.name} pins {self._shown([cert_path])[0]} too; give this feed another name"
                for spec in specs if spec.signing_cert_file is not None and spec.name != f"federation/{name}"
                and spec.signing_cert_file.resolve() == cert_path.resolve()]

    # -- writing ----------------------------------------------------------------------------------------------
    def apply(self, draft: SourceDraft) -> SourcePreview:
        with self._lock:
            shown = self.preview(draft)
            if shown.problems:
                raise RegistrationRefused(shown.problems)
            source, cert_path = self._files(draft.kind, draft.name)
            if draft.certificate:
                write_atomically(cert_path, draft.certificate)  # the pin first, then the file that needs it
            if draft.kind is SourceKind.IDP_FILE:
                write_atomically(source, draft.document or b"")
            else:
                write_atomically(source, federation_toml(draft.name, draft.url or "", draft.refresh_interval))
        self._take_up(draft.source_name, shown.replaces)
        return shown

    def remove(self, kind: SourceKind, name: str) -> SourceRemoved:
        if not (is_plain_stem(name) if kind is SourceKind.IDP_FILE else NAME_RE.fullmatch(name)):  # a dropped file
            raise RegistrationRefused([f"there is no metadata source {kind.folder}/{name[:64]}"])
        with self._lock:
            source, cert_path = self._files(kind, name)
            if not source.is_file():
                raise RegistrationRefused([f"there is no metadata source {kind.folder}/{name}"])
            pinned = _pinned_path(source, self._instance) if kind is SourceKind.FEDERATION else cert_path
            source.unlink()  # the source before its pin: never an unchecked file for a moment
            removed = [source]
            if pinned is not None and pinned.is_file() and pinned.resolve() == cert_path.resolve() \
                    and not self._pinned_elsewhere(name, cert_path):
                pinned.unlink()
                removed.append(pinned)
        self._take_up(f"{kind.folder}/{name}", False)
        return SourceRemoved(kind, f"{kind.folder}/{name}", self._shown(removed))

    def _take_up(self, name: str, replaced: bool) -> None:
        """The directory rescans now (a new source is built, a removed one dropped) and refreshes a replaced one
        (a file whose content changed keeps its configuration); bounded, the rest goes on in the background."""
        directory = self._directory
        if directory is None:
            return

        def run() -> None:
            try:
                directory.rescan()
                if replaced:
                    directory.refresh_source(name)
            except Exception:  # the directory keeps its last good copy; its background rescan tries again
                log.exception("taking up the metadata source %s failed", name)
        thread = threading.Thread(target=run, name=f"take up {name}", daemon=True)
        thread.start()
        thread.join(self._wait)


def _form_problems(draft: SourceDraft) -> list[str]:
    problems = []
    if not NAME_RE.fullmatch(draft.name):
        problems.append("the name must be 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit")
    for label, value in (("the metadata", draft.document), ("the certificate", draft.certificate)):
        if value is not None and len(value) > MAX_SOURCE_DOCUMENT:
            problems.append(f"{label} is larger than {MAX_SOURCE_DOCUMENT} bytes")
    if draft.kind is SourceKind.IDP_FILE:
        if not draft.document:
            problems.append("give the metadata XML")
        if draft.url is not None or draft.refresh_interval is not None:
            problems.append("an IdP metadata file has no URL or refresh interval (a federation feed has)")
    else:
        if not draft.url:
            problems.append("give the feed's https URL")
        if not draft.certificate:
            problems.append("give the federation's signing certificate (PEM): the feed is verified with it")
        if draft.document is not None:
            problems.append("a federation feed is fetched from its URL; upload a document as an IdP metadata file")
        if draft.refresh_interval is not None and draft.refresh_interval < MIN_REFRESH:
            problems.append(f"refresh_interval must be at least {MIN_REFRESH} seconds")
    return problems


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _digest(data: bytes | None) -> str | None:
    return None if data is None else "SHA-256 " + hashlib.sha256(data).hexdigest()


def _pin(pem: bytes | None) -> str | None:
    try:
        return None if not pem else cert_fingerprint(pem)
    except ValueError:
        return "unreadable"


def _idp_changes(party: str, before: Checked | None, after: Checked, old: bytes | None, new: bytes,
                 old_pem: bytes | None, new_pem: bytes | None) -> tuple[Change, ...]:
    old_ids, new_ids = (before.entity_ids if before else frozenset()), after.entity_ids
    fields_before = {"file": _digest(old), "signing certificate": _pin(old_pem),
                     "identity providers": before.entity_count if before else None}
    fields_after = {"file": _digest(new), "signing certificate": _pin(new_pem),
                    "identity providers": after.entity_count}
    changes = list(diff_fields(party, fields_before, fields_after))
    changes += [Change(party, "identity provider", None, e) for e in sorted(new_ids - old_ids)[:_LISTED]]
    changes += [Change(party, "identity provider", e, None) for e in sorted(old_ids - new_ids)[:_LISTED]]
    return tuple(changes)


def _pinned_path(toml: Path, instance: Path) -> Path | None:
    raw = _toml(_read(toml))
    cert = raw.get("signing_cert_file")
    if not isinstance(cert, str) or not cert:
        return None
    return Path(cert) if Path(cert).is_absolute() else instance / cert


def _toml(data: bytes | None) -> dict[str, object]:
    try:
        return tomllib.loads(data.decode()) if data else {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError):
        return {}


def _federation_fields(toml: Path, instance: Path) -> dict[str, object]:
    pinned = _pinned_path(toml, instance)
    return _fields(_toml(_read(toml)), _read(pinned) if pinned is not None else None)


def _federation_fields_of(toml: bytes, certificate: bytes) -> dict[str, object]:
    return _fields(_toml(toml), certificate)


def _fields(raw: dict[str, object], pem: bytes | None) -> dict[str, object]:
    if not raw:
        return {}
    return {"url": raw.get("url"), "file": raw.get("file"), "signing_cert_file": raw.get("signing_cert_file"),
            "signing certificate": _pin(pem), "refresh_interval": raw.get("refresh_interval")}


_check: type[MetadataSourceFiles] = FileSources
