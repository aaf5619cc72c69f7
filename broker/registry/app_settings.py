"""A registered SAML app's operator settings, edited from the operator console and the admin API as ``broker sp set``
edits them (issue 19; README "Registering parties": ``metadata/saml-sp/<name>.toml``).

The settings as written are read (``read_raw_settings``), ``clear`` removes keys, ``changes`` sets keys, and the
result goes through ``sp_registrations.preview_sp_settings`` / ``set_sp_settings``: validated with the app's
metadata exactly as the registry will load them (``sp_settings.parse_sp_settings``: ``default_upstream`` one of
``allowed_upstreams``, https logos...), with the diff against what is served now. Only ``SAML_SETTINGS`` may be
edited here: ``disabled`` is the enable/disable switch's.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from broker.core.party_admin import SAML_SETTINGS, AppKind, AppPreview, RegistrationRefused
from broker.registry import registrations
from broker.registry import sp_registrations as sps
from broker.registry.sp_settings import SpSettings

#: notes on settings the broker serves anyway (unregistered upstreams, an acr off the scale): ``sp_settings_notes``
Notes = Callable[[SpSettings], Sequence[str]]


def current(metadata_dir: Path, kind: AppKind, entity_id: str) -> dict[str, object]:
    """The editable settings as written; ``RegistrationRefused`` when no SAML app has that entity id."""
    _saml_only(kind)
    try:
        raw = sps.read_raw_settings(sps.find_sp_file(metadata_dir, entity_id))
    except registrations.RegistrationRefused as exc:
        raise RegistrationRefused(exc.problems) from exc
    return {key: raw[key] for key in SAML_SETTINGS if key in raw}


def preview(metadata_dir: Path, kind: AppKind, entity_id: str, changes: Mapping[str, object],
            clear: Sequence[str], notes: Notes) -> AppPreview:
    """What writing the changed settings would do; problems instead of raising."""
    try:
        _saml_only(kind)
        merged = _merged(metadata_dir, entity_id, changes, clear)
        shown = sps.preview_sp_settings(metadata_dir, entity_id, merged)
    except (RegistrationRefused, registrations.RegistrationRefused) as exc:
        return AppPreview(kind, (entity_id,), "", tuple(exc.problems), ())
    return _shown(shown, entity_id, notes)


def apply(metadata_dir: Path, kind: AppKind, entity_id: str, changes: Mapping[str, object],
          clear: Sequence[str], notes: Notes) -> AppPreview:
    """Validated again against the files as they are now, then the settings file written (the metadata stays)."""
    try:
        _saml_only(kind)
        merged = _merged(metadata_dir, entity_id, changes, clear)
        shown = sps.set_sp_settings(metadata_dir, entity_id, merged)  # refused, and nothing written, on a problem
    except registrations.RegistrationRefused as exc:
        raise RegistrationRefused(exc.problems) from exc
    return _shown(shown, entity_id, notes)


def notes_for(upstreams: Callable[[], Collection[str]], on_scale: Callable[[str], bool] | None) -> Notes:
    """``sp_settings_notes`` with the registered upstreams' names (read when asked) and the assurance scale
    (None: every acr counts as on it, no note)."""
    return lambda settings: sps.sp_settings_notes(settings, upstreams(), on_scale or (lambda acr: True))


def _saml_only(kind: AppKind) -> None:
    if kind is not AppKind.SAML:
        raise RegistrationRefused([f"only SAML apps have operator settings here, not {kind.value}: an OpenID "
                                   "client's are in its client metadata, an upstream's in its registration"])


def _merged(metadata_dir: Path, entity_id: str, changes: Mapping[str, object],
            clear: Sequence[str]) -> dict[str, Any]:
    """``broker sp set``: the settings as written, ``clear`` removed first, then ``changes`` set."""
    unknown = sorted({*changes, *clear} - set(SAML_SETTINGS))
    if unknown:
        raise RegistrationRefused([f"unknown settings {unknown} (known: {', '.join(SAML_SETTINGS)}; an app is "
                                   "switched off and on by disable and enable)"])
    raw = sps.read_raw_settings(sps.find_sp_file(metadata_dir, entity_id))
    return {**{key: value for key, value in raw.items() if key not in clear}, **changes}


def _shown(shown: sps.SpPreview, entity_id: str, notes: Notes) -> AppPreview:
    problems = tuple(shown.problems)
    facts = [("Entity ID", entity_id), ("Settings file", f"{shown.file_stem}.toml")]
    if not problems:
        facts += [("Name citizens see", v.display_name) for v in shown.sps if v.entity_id == entity_id]
        facts += [("Note", note) for note in notes(shown.settings)]
    # the settings file applies to every app its metadata file describes
    party_ids = tuple(v.entity_id for v in shown.sps) or (entity_id,)
    return AppPreview(AppKind.SAML, party_ids, shown.file, problems, shown.changes if not problems else (),
                      tuple(facts), replaces=True)
