"""``apply_sp``, ``set_sp_settings``, ``set_sp_enabled`` and ``remove_sp``: the files a preview describes, written
in one step each and seen by the registry's next reload; a refusal writes nothing."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from broker.registry.registrations import NotRegistered, RegistrationRefused
from broker.registry.saml_sps import SP_FOLDER, load_sp_catalog
from broker.registry.sp_registrations import (
    apply_sp,
    disabled_sps,
    find_sp_file,
    preview_sp,
    remove_sp,
    set_sp_enabled,
    set_sp_settings,
)
from broker.registry.sp_settings import SpSettings, read_sp_settings
from tests.flows.saml_peers import SpKeys
from tests.registry.registration_support import files_in, make_metadata_dir, registry_over
from tests.sp_metadata import sp_metadata, write_sp_metadata

APP = "https://permits.city.example.org/sp"
LIBRARY = "https://library.city.example.org/sp"


@pytest.fixture
def metadata_dir(tmp_path: Path) -> Path:
    return make_metadata_dir(tmp_path)


def _xml(keys: SpKeys, entity_id: str = APP, **options: Any) -> bytes:
    return sp_metadata(entity_id, keys, **options).encode()


def test_applied_files_are_what_the_registry_serves_after_its_reload(metadata_dir: Path, sp_keys: SpKeys) -> None:
    registry = registry_over(metadata_dir)
    assert registry.downstream(APP) is None
    xml = _xml(sp_keys, display_name="Permits")
    preview = preview_sp(metadata_dir, xml, {"display_name": "Parking permits", "allowed_upstreams": ["city"]},
                         "permits")

    apply_sp(metadata_dir, preview)

    party = registry.downstream(APP)
    assert party is not None
    assert (party.display_name, party.allowed_upstreams) == ("Parking permits", ("city",))
    assert registry.snapshot.problems == ()
    assert files_in(metadata_dir) == {
        f"{SP_FOLDER}/permits.xml": xml,  # the metadata as given, byte for byte
        f"{SP_FOLDER}/permits.toml": preview.settings.to_toml().encode(),
    }


def test_a_preview_with_problems_writes_nothing(metadata_dir: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "permits.xml", APP, sp_keys, display_name="Permits")
    before = files_in(metadata_dir)
    preview = preview_sp(metadata_dir, _xml(sp_keys), {"logo_uri": "http://insecure.example.org/l.png"}, "permits")

    with pytest.raises(RegistrationRefused, match=re.escape("logo_uri must be an https URL")):
        apply_sp(metadata_dir, preview)

    assert files_in(metadata_dir) == before
    assert load_sp_catalog(metadata_dir).sps[APP].display_name == "Permits"


def test_apply_checks_again_against_the_folder_as_it_is_now(metadata_dir: Path, sp_keys: SpKeys) -> None:
    preview = preview_sp(metadata_dir, _xml(sp_keys), {}, "permits")
    assert preview.problems == () and preview.taken == ()
    write_sp_metadata(metadata_dir / SP_FOLDER / "meanwhile.xml", APP, sp_keys)  # another operator, meanwhile
    before = files_in(metadata_dir)

    with pytest.raises(RegistrationRefused, match=re.escape(f"{APP} is already registered by meanwhile.xml")):
        apply_sp(metadata_dir, preview)

    assert files_in(metadata_dir) == before


def test_replacing_a_file_that_registers_another_app_must_be_asked_for(metadata_dir: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "permits.xml", APP, sp_keys)
    before = files_in(metadata_dir)
    preview = preview_sp(metadata_dir, _xml(sp_keys, LIBRARY), {}, "permits")

    with pytest.raises(RegistrationRefused, match=re.escape("registers https://permits.city.example.org/sp today")):
        apply_sp(metadata_dir, preview)
    assert files_in(metadata_dir) == before

    apply_sp(metadata_dir, preview, replace_others=True)
    assert set(load_sp_catalog(metadata_dir).sps) == {LIBRARY}


def test_a_failed_write_leaves_the_old_files_and_no_temporary_one(metadata_dir: Path, sp_keys: SpKeys,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "permits.xml", APP, sp_keys, display_name="Permits")
    before = files_in(metadata_dir)
    preview = preview_sp(metadata_dir, _xml(sp_keys, display_name="Permits v2"), {}, "permits")

    def full_disk(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match=re.escape("No space left")):
        apply_sp(metadata_dir, preview)

    assert files_in(metadata_dir) == before


def test_settings_are_set_validated_and_cleared(metadata_dir: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "permits.xml", APP, sp_keys, display_name="Permits")
    registry = registry_over(metadata_dir)

    changed = set_sp_settings(metadata_dir, APP, SpSettings(display_name="Parking permits"))
    party = registry.downstream(APP)
    assert party is not None and party.display_name == "Parking permits"
    assert [c.field for c in changed.changes] == ["display_name", "settings.display_name"]

    before = files_in(metadata_dir)
    with pytest.raises(RegistrationRefused, match=re.escape("is not one of allowed_upstreams")):
        set_sp_settings(metadata_dir, APP, {"allowed_upstreams": ["city"], "default_upstream": "google"})
    assert files_in(metadata_dir) == before

    set_sp_settings(metadata_dir, APP, {})
    assert not (metadata_dir / SP_FOLDER / "permits.toml").exists()
    with pytest.raises(NotRegistered, match=re.escape("no registered SP has entity id https://unknown.example.org")):
        set_sp_settings(metadata_dir, "https://unknown.example.org", {})


def test_a_disabled_app_is_not_served_and_keeps_its_files_and_settings(metadata_dir: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "permits.xml", APP, sp_keys)
    set_sp_settings(metadata_dir, APP, {"display_name": "Parking permits"})
    registry = registry_over(metadata_dir)

    set_sp_enabled(metadata_dir, APP, False)

    assert registry.downstream(APP) is None
    assert registry.snapshot.problems == ()  # switched off on purpose: nothing to report
    assert read_sp_settings(metadata_dir / SP_FOLDER / "permits.xml") == SpSettings(display_name="Parking permits",
                                                                                   disabled=True)
    assert [(v.entity_id, v.display_name, v.settings.disabled) for v in disabled_sps(metadata_dir)] == [
        (APP, "Parking permits", True)]
    assert find_sp_file(metadata_dir, APP) == metadata_dir / SP_FOLDER / "permits.xml"

    set_sp_enabled(metadata_dir, APP, True)

    party = registry.downstream(APP)
    assert party is not None and party.display_name == "Parking permits"
    assert disabled_sps(metadata_dir) == ()
    assert "disabled" not in (metadata_dir / SP_FOLDER / "permits.toml").read_text()


def test_enabling_is_refused_while_another_file_registers_the_app(metadata_dir: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "permits.xml", APP, sp_keys)
    set_sp_enabled(metadata_dir, APP, False)
    write_sp_metadata(metadata_dir / SP_FOLDER / "newer.xml", APP, sp_keys)

    with pytest.raises(RegistrationRefused, match=re.escape("registered by newer.xml meanwhile")):
        set_sp_enabled(metadata_dir, APP, True)

    assert read_sp_settings(metadata_dir / SP_FOLDER / "permits.xml").disabled


def test_remove_takes_both_files_and_the_registry_stops_serving(metadata_dir: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "permits.xml", APP, sp_keys)
    set_sp_settings(metadata_dir, APP, {"display_name": "Parking permits"})
    registry = registry_over(metadata_dir)
    assert registry.downstream(APP) is not None

    removed = remove_sp(metadata_dir, APP)

    assert removed == metadata_dir / SP_FOLDER / "permits.xml"
    assert files_in(metadata_dir) == {}
    assert registry.downstream(APP) is None
    with pytest.raises(NotRegistered):
        remove_sp(metadata_dir, APP)
