"""SAML apps: preview, diff, apply, settings, enable/disable and remove, for ``broker sp``, the operator console
and the admin API alike (``broker.registry.registrations`` describes the family).

An app is two files in ``metadata/saml-sp/``: its metadata ``<stem>.xml`` (SAML 2.0 Metadata §2.4.4) and the
operator's settings ``<stem>.toml`` (``broker.registry.sp_settings``). A preview loads both in a scratch folder
with ``load_sp_catalog``, exactly as the registry will, and says what the app would be (``SpView``), what the
file registers today, and which of its entity ids another file registers already. ``disabled = true`` in the
settings keeps the files but the registry does not serve the app; a disabled app is still validated as it
would be served once enabled.
"""

from __future__ import annotations

import re
import tempfile
import tomllib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from broker.core.display import looks_like_uri
from broker.registry.registrations import (
    Change,
    NotRegistered,
    RegistrationRefused,
    diff_fields,
    is_plain_stem,
    write_atomically,
)
from broker.registry.saml_sps import SP_FOLDER, load_sp_catalog
from broker.registry.sp_settings import SpSettings, SpSettingsError, parse_sp_settings, read_sp_settings, settings_path
from broker.registry.sp_view import SpView, sp_views

#: the operator's settings, parsed or as written (a TOML table, a JSON object from the admin API)
SettingsInput = SpSettings | Mapping[str, Any]


@dataclass(frozen=True)
class TakenEntity:
    """An entity id of the proposed metadata that another file registers already (one party, one file)."""

    entity_id: str
    file: str


@dataclass(frozen=True)
class SpPreview:
    """What registering ``xml`` with ``settings`` as ``<file_stem>.xml`` would do. ``problems``: why the registry
    would not serve it (then ``sps`` is empty and nothing may be applied)."""

    file_stem: str
    xml: bytes = field(repr=False)
    settings: SpSettings
    sps: tuple[SpView, ...]
    problems: tuple[str, ...]
    #: what ``<file_stem>.xml`` registers today (disabled or not), for the diff
    current: tuple[SpView, ...] = ()
    taken: tuple[TakenEntity, ...] = ()

    @property
    def file(self) -> str:
        return f"{self.file_stem}.xml"

    @property
    def replaces_others(self) -> bool:
        """The file registers other apps today than it would: applying needs ``replace=True``."""
        now = sorted(view.entity_id for view in self.current)
        return bool(now) and now != sorted(view.entity_id for view in self.sps)

    @property
    def changes(self) -> tuple[Change, ...]:
        return diff_sps(self.current, self.sps)


def _parsed(settings: SettingsInput) -> tuple[SpSettings, tuple[str, ...]]:
    if isinstance(settings, SpSettings):
        return settings, ()
    if not isinstance(settings, Mapping):
        return SpSettings(), ("settings not valid: they must be a table of settings",)
    try:
        return parse_sp_settings(settings), ()
    except SpSettingsError as exc:
        return SpSettings(), (f"settings not valid: {exc}",)


def _load(xml: bytes, settings: SpSettings, stem: str) -> tuple[tuple[SpView, ...], tuple[str, ...]]:
    """``xml`` and ``settings`` as ``<stem>.xml`` and ``<stem>.toml`` in a scratch folder, loaded as the registry
    loads them (a disabled app as it would be served once enabled)."""
    try:
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch) / SP_FOLDER
            folder.mkdir()
            (folder / f"{stem}.xml").write_bytes(xml)  # the registry reads only *.xml, whatever the source is called
            text = replace(settings, disabled=False).to_toml()
            if text:
                (folder / f"{stem}.toml").write_text(text)
            catalog = load_sp_catalog(Path(scratch))
    except OSError as exc:
        return (), (f"the metadata could not be checked: {exc}",)
    if catalog.problems or not catalog.sps:
        return (), catalog.problems or (f"{stem}.xml describes no SAML service provider",)
    return sp_views(catalog, settings), ()


def _current(metadata_dir: Path, stem: str) -> tuple[SpView, ...]:
    target = metadata_dir / SP_FOLDER / f"{stem}.xml"
    try:
        xml, settings = target.read_bytes(), read_sp_settings(target)
    except (OSError, SpSettingsError):  # no such file, or one the registry skips today: nothing registered
        return ()
    return _load(xml, settings, stem)[0]


def _stem_for(metadata_dir: Path, views: Sequence[SpView]) -> str:
    """The file of an app registered already (an update), else a plain name made from its entity id."""
    for view in views:
        try:
            return find_sp_file(metadata_dir, view.entity_id).stem
        except (NotRegistered, OSError):
            continue
    entity_id = views[0].entity_id
    try:
        parts = urlsplit(entity_id)
        readable = f"{parts.hostname or ''}{parts.path}" or entity_id
    except ValueError:  # not a URL: the entity id itself
        readable = entity_id
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", readable)
    return stem.strip("._-")[:80].strip("._-") or "app"


def preview_sp(metadata_dir: Path, xml: bytes | str, settings: SettingsInput,
               file_stem: str | None = None) -> SpPreview:
    """Validate ``xml`` with ``settings`` exactly as the registry will load them as ``<file_stem>.xml`` (untrusted
    input: every problem is listed, nothing is raised). Without ``file_stem``: the file that registers the app
    now, else a name made from its entity id."""
    xml = xml.encode() if isinstance(xml, str) else xml
    if file_stem is not None and not is_plain_stem(file_stem):
        return SpPreview(file_stem, xml, SpSettings(), (),
                         (f"{file_stem!r} is not a plain file name (letters, digits, '.', '-', '_')",))
    parsed, problems = _parsed(settings)
    stem = file_stem or "metadata"
    sps: tuple[SpView, ...] = ()
    if not problems:
        sps, problems = _load(xml, parsed, stem)
    if file_stem is None and sps and (derived := _stem_for(metadata_dir, sps)) != stem:
        stem = derived
        sps, problems = _load(xml, parsed, stem)
    target = (metadata_dir / SP_FOLDER / f"{stem}.xml").resolve()
    served = load_sp_catalog(metadata_dir).sps if sps else {}
    taken = tuple(TakenEntity(view.entity_id, other.source.name) for view in sps
                  if (other := served.get(view.entity_id)) is not None and other.source.resolve() != target)
    return SpPreview(stem, xml, parsed, sps, problems, _current(metadata_dir, stem), taken)


def preview_sp_settings(metadata_dir: Path, entity_id: str, settings: SettingsInput) -> SpPreview:
    """The registered app ``entity_id`` (its metadata as it is) with other ``settings``; ``NotRegistered``."""
    return _with_settings(metadata_dir, find_sp_file(metadata_dir, entity_id), settings)


def _with_settings(metadata_dir: Path, source: Path, settings: SettingsInput) -> SpPreview:
    try:
        xml = source.read_bytes()
    except OSError as exc:
        raise RegistrationRefused([f"{source.name} is not readable: {exc.strerror or exc}"]) from exc
    return preview_sp(metadata_dir, xml, settings, source.stem)


def diff_sp(current: SpView | None, proposed: SpView | None) -> tuple[Change, ...]:
    """What changes for one app (None: not registered, before or after); certificates by SHA-256 fingerprint."""
    shown = proposed or current
    if shown is None:
        return ()
    return diff_fields(shown.entity_id, current.shown_fields() if current else {},
                       proposed.shown_fields() if proposed else {})


def diff_sps(current: Sequence[SpView], proposed: Sequence[SpView]) -> tuple[Change, ...]:
    """What changes for every app of a metadata file, matched by entity id."""
    before, after = {v.entity_id: v for v in current}, {v.entity_id: v for v in proposed}
    return tuple(change for entity_id in dict.fromkeys([*before, *after])
                 for change in diff_sp(before.get(entity_id), after.get(entity_id)))


def _refusals(preview: SpPreview, replace_others: bool) -> list[str]:
    refusals = [f"{t.entity_id} is already registered by {t.file}" for t in preview.taken]
    if preview.replaces_others and not replace_others:
        refusals.append(f"{preview.file} registers {', '.join(sorted(v.entity_id for v in preview.current))} "
                        "today: replace them explicitly (replace_others) or choose another file name")
    return refusals


def _write_settings(target: Path, settings: SpSettings) -> None:
    text, path = settings.to_toml(), settings_path(target)
    if text:
        write_atomically(path, text.encode())
    else:
        path.unlink(missing_ok=True)


def apply_sp(metadata_dir: Path, preview: SpPreview, *, replace_others: bool = False) -> SpPreview:
    """Write the previewed files, validated again against the folder as it is now; ``RegistrationRefused`` and
    nothing written when they would not load, or clash. Settings first, then the metadata (each file replaced
    in one step): the app is never served with new metadata under old settings."""
    if preview.problems:
        raise RegistrationRefused(preview.problems)
    fresh = preview_sp(metadata_dir, preview.xml, preview.settings, preview.file_stem)
    refusals = list(fresh.problems) or _refusals(fresh, replace_others)
    if refusals:
        raise RegistrationRefused(refusals)
    target = metadata_dir / SP_FOLDER / fresh.file
    _write_settings(target, fresh.settings)
    write_atomically(target, fresh.xml)
    return fresh


def set_sp_settings(metadata_dir: Path, entity_id: str, settings: SettingsInput) -> SpPreview:
    """Replace the operator's settings of a registered app (its metadata stays), validated first."""
    return _write_preview_settings(metadata_dir, preview_sp_settings(metadata_dir, entity_id, settings))


def _write_preview_settings(metadata_dir: Path, preview: SpPreview) -> SpPreview:
    if preview.problems:
        raise RegistrationRefused(preview.problems)
    _write_settings(metadata_dir / SP_FOLDER / preview.file, preview.settings)
    return preview


def set_sp_enabled(metadata_dir: Path, entity_id: str, enabled: bool) -> SpPreview:
    """Serve the app again, or not (``disabled = true`` in its settings; every other setting and the metadata
    stay). Enabling is refused while another file registers the same entity id."""
    disabled = next((v.file for v in disabled_sps(metadata_dir) if v.entity_id == entity_id), None)
    source = metadata_dir / SP_FOLDER / disabled if enabled and disabled else find_sp_file(metadata_dir, entity_id)
    raw = read_raw_settings(source)
    raw.pop("disabled", None)
    if not enabled:
        raw["disabled"] = True
    preview = _with_settings(metadata_dir, source, raw)
    if enabled and preview.taken:
        raise RegistrationRefused([f"{t.entity_id} is registered by {t.file} meanwhile" for t in preview.taken])
    return _write_preview_settings(metadata_dir, preview)


def remove_sp(metadata_dir: Path, entity_id: str) -> Path:
    """Delete the app's metadata file and its settings; the metadata file's path. ``NotRegistered``."""
    source = find_sp_file(metadata_dir, entity_id)
    settings_path(source).unlink(missing_ok=True)
    source.unlink()
    return source


def find_sp_file(metadata_dir: Path, entity_id: str) -> Path:
    """The metadata file registering ``entity_id``, found even when its settings do not validate now or say
    it is disabled. ``NotRegistered`` when no file does."""
    sp = load_sp_catalog(metadata_dir).sps.get(entity_id)
    if sp is not None:
        return sp.source
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / SP_FOLDER).mkdir()
        for path in sorted((metadata_dir / SP_FOLDER).glob("*.xml")):
            (Path(scratch) / SP_FOLDER / path.name).write_bytes(path.read_bytes())
        found = load_sp_catalog(Path(scratch)).sps.get(entity_id)
    if found is None:
        raise NotRegistered([f"no registered SP has entity id {entity_id}"])
    return metadata_dir / SP_FOLDER / found.source.name


def read_raw_settings(metadata_file: Path) -> dict[str, Any]:
    """The settings beside ``metadata_file`` as written (not validated: a command may be repairing them); empty
    when there are none. ``RegistrationRefused`` when the file is not TOML."""
    try:
        return dict(tomllib.loads(settings_path(metadata_file).read_text()))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RegistrationRefused([f"{settings_path(metadata_file)} is not readable TOML ({exc}); "
                                   "fix or remove it first"]) from exc


def disabled_sps(metadata_dir: Path) -> tuple[SpView, ...]:
    """The apps whose settings say ``disabled = true`` (the registry does not serve them), as they would be."""
    views: list[SpView] = []
    for path in sorted((metadata_dir / SP_FOLDER).glob("*.xml")):
        try:
            settings = read_sp_settings(path)
            if settings.disabled:
                views += _load(path.read_bytes(), settings, path.stem)[0]
        except (OSError, SpSettingsError):
            continue
    return tuple(views)


def sp_settings_notes(settings: SpSettings, upstreams: Collection[str],
                      on_scale: Callable[[str], bool]) -> tuple[str, ...]:
    """Notes, not problems (the broker serves the app either way): upstreams not registered (yet), and a
    ``required_acr`` outside the ``[assurance]`` scale (``on_scale``), which only that exact value would meet."""
    notes = []
    acr = settings.required_acr
    if acr is not None and not on_scale(acr):
        notes.append(f"required_acr {acr!r} is not on the [assurance] scale (order or aliases): only an upstream "
                     "answering exactly that value will meet it")
    names = [*settings.allowed_upstreams, *([settings.default_upstream] if settings.default_upstream else [])]
    for name in dict.fromkeys(names):
        if name not in upstreams and not looks_like_uri(name):
            notes.append(f"no upstream named {name!r} is registered (yet); the app cannot use it until one is")
    return tuple(notes)
