"""``preview_sp`` and ``diff_sp``: a SAML app's metadata (written by pysaml2) and the operator's settings,
validated exactly as the registry loads them and compared with what is registered now."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from saml2 import BINDING_HTTP_ARTIFACT, BINDING_HTTP_POST
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT

from broker.registry.registrations import Change
from broker.registry.saml_sps import SP_FOLDER
from broker.registry.sp_registrations import TakenEntity, diff_sp, preview_sp
from broker.registry.sp_settings import SpSettings
from broker.registry.sp_view import Endpoint, SpView
from tests.flows.saml_peers import SpKeys
from tests.registry.registration_support import make_metadata_dir
from tests.sp_metadata import make_sp_keys, sp_metadata, write_sp_metadata

APP = "https://permits.city.example.org/sp"


@pytest.fixture
def metadata_dir(tmp_path: Path) -> Path:
    return make_metadata_dir(tmp_path)


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> SpKeys:
    return make_sp_keys(tmp_path_factory.mktemp("other-sp-keys"))


def _xml(keys: SpKeys, entity_id: str = APP, **options: Any) -> bytes:
    return sp_metadata(entity_id, keys, **options).encode()


def _view(metadata_dir: Path, xml: bytes, settings: dict[str, Any] | None = None) -> SpView:
    preview = preview_sp(metadata_dir, xml, settings or {}, "permits")
    assert preview.problems == ()
    [view] = preview.sps
    return view


def _fingerprint(keys: SpKeys) -> str:
    cert = x509.load_pem_x509_certificate(keys.cert_file.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def test_a_preview_shows_the_app_as_the_broker_will_serve_it(metadata_dir: Path, sp_keys: SpKeys) -> None:
    xml = _xml(sp_keys, display_name="Permits", optional=("telephoneNumber",))

    preview = preview_sp(metadata_dir, xml, {"allowed_upstreams": ["city"], "required_acr": "substantial"}, "permits")

    assert (preview.problems, preview.taken, preview.current, preview.file) == ((), (), (), "permits.xml")
    [view] = preview.sps
    assert (view.entity_id, view.file, view.display_name) == (APP, "permits.xml", "Permits")
    assert view.acs == (Endpoint(BINDING_HTTP_POST, f"{APP}/acs", "1"),)
    cert = x509.load_pem_x509_certificate(sp_keys.cert_file.read_bytes())
    assert [(c.use, c.sha256, c.not_after) for c in view.certificates] == [
        ("signing", _fingerprint(sp_keys), cert.not_valid_after_utc)]
    assert view.name_id_formats == (NAMEID_FORMAT_PERSISTENT,)
    assert [str(a) for a in view.requested_attributes] == [
        "mail (required)", "givenName (required)", "sn (required)", "telephoneNumber"]
    assert view.claims == {"email", "given_name", "family_name", "phone_number"}
    assert view.required_claims == {"email", "given_name", "family_name"}
    assert view.authn_requests_signed
    assert view.settings == SpSettings(allowed_upstreams=("city",), required_acr="substantial")
    assert preview.xml == xml


def _doctype(keys: SpKeys) -> bytes:
    text = sp_metadata(APP, keys)
    return b'<?xml version="1.0"?>\n<!DOCTYPE md [<!ENTITY e "x">]>\n' + text.split("?>", 1)[-1].encode()


@pytest.mark.parametrize(("case", "settings", "stem", "message"), [
    ("truncated", {}, "permits", "not well-formed XML"),
    ("doctype", {}, "permits", "carries a DOCTYPE"),
    ("not metadata", {}, "permits", "describes no SAML service provider"),
    ("no bytes", {}, "permits", "not well-formed XML"),
    ("not text", {}, "permits", "not well-formed XML"),
    ("artifact only", {}, "permits", "has no HTTP-POST AssertionConsumerService"),
    ("valid", {"colour": "red"}, "permits", "settings not valid: unknown settings ['colour']"),
    ("valid", {"logo_uri": "http://permits.city.example.org/logo.png"}, "permits", "logo_uri must be an https URL"),
    ("valid", {"required": ["birthdate"]}, "permits", "required names claims the app does not receive"),
    ("valid", {"disabled": "yes"}, "permits", "disabled must be true or false"),
    ("valid", ["display_name"], "permits", "settings not valid: they must be a table of settings"),
    ("valid", {}, "../permits", "is not a plain file name"),
])
def test_every_kind_of_invalid_input_gives_problems_never_an_exception(
        metadata_dir: Path, sp_keys: SpKeys, case: str, settings: Any, stem: str, message: str) -> None:
    xml = {"truncated": _xml(sp_keys)[:600], "doctype": _doctype(sp_keys), "not metadata": b"<html>Not found</html>",
           "no bytes": b"", "not text": bytes(range(256)), "artifact only": _xml(sp_keys, artifact_acs_only=True),
           "valid": _xml(sp_keys)}[case]

    preview = preview_sp(metadata_dir, xml, settings, stem)

    assert preview.sps == ()
    assert message in "; ".join(preview.problems)


def test_an_entity_id_another_file_registers_is_taken(metadata_dir: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "permits.xml", APP, sp_keys)

    elsewhere = preview_sp(metadata_dir, _xml(sp_keys), {}, "copy")
    same_file = preview_sp(metadata_dir, _xml(sp_keys, display_name="New"), {}, "permits")

    assert elsewhere.taken == (TakenEntity(APP, "permits.xml"),)
    assert same_file.taken == () and not same_file.replaces_others
    assert [v.entity_id for v in same_file.current] == [APP]


def test_without_a_file_name_an_update_finds_the_registered_file_and_a_new_app_gets_one(
        metadata_dir: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "legacy-name.xml", APP, sp_keys)

    update = preview_sp(metadata_dir, _xml(sp_keys, display_name="New"), {})
    new = preview_sp(metadata_dir, _xml(sp_keys, "https://library.city.example.org/saml/sp"), {})

    assert (update.file_stem, update.problems, update.taken) == ("legacy-name", (), ())
    assert (new.file_stem, new.problems) == ("library.city.example.org_saml_sp", ())


def test_a_file_that_registers_another_app_today_is_replaced_only_on_request(metadata_dir: Path,
                                                                             sp_keys: SpKeys) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "permits.xml", APP, sp_keys)

    preview = preview_sp(metadata_dir, _xml(sp_keys, "https://library.city.example.org/sp"), {}, "permits")

    assert preview.problems == () and preview.replaces_others


# -- diff -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "settings", "fields"), [
    ({"display_name": "Permits v2"}, {}, {"display_name"}),
    ({"optional": ("telephoneNumber",)}, {}, {"requested_attributes", "claims"}),
    ({"requested": ("mail",)}, {}, {"requested_attributes", "claims", "required_claims"}),
    ({"sign_requests": False}, {}, {"authn_requests_signed"}),
    ({"logo": "https://permits.city.example.org/logo.png"}, {}, {"logo_uri"}),
    ({"privacy_url": "https://permits.city.example.org/privacy"}, {}, {"policy_uri"}),
    ({}, {"display_name": "Parking"}, {"display_name", "settings.display_name"}),
    ({}, {"allowed_upstreams": ["city"], "default_upstream": "city"},
     {"settings.allowed_upstreams", "settings.default_upstream"}),
    ({}, {"required_acr": "substantial"}, {"settings.required_acr"}),
    ({}, {"receive": ["email"], "required": ["email"]},
     {"claims", "required_claims", "settings.receive", "settings.required"}),
    ({}, {"disabled": True}, {"settings.disabled"}),
])
def test_each_field_that_changes_shows(metadata_dir: Path, sp_keys: SpKeys, options: dict[str, Any],
                                       settings: dict[str, Any], fields: set[str]) -> None:
    current = _view(metadata_dir, _xml(sp_keys, display_name="Permits"))
    proposed = _view(metadata_dir, _xml(sp_keys, **{"display_name": "Permits", **options}), settings)

    changes = diff_sp(current, proposed)

    assert {c.field for c in changes} == fields
    assert all(c.party == APP and c.before != c.after for c in changes)


def test_a_new_certificate_shows_by_fingerprint(metadata_dir: Path, sp_keys: SpKeys, other_keys: SpKeys) -> None:
    changes = diff_sp(_view(metadata_dir, _xml(sp_keys)), _view(metadata_dir, _xml(other_keys)))

    old, new = _fingerprint(sp_keys), _fingerprint(other_keys)
    assert [(c.field, c.before is None, c.after is None) for c in changes] == [
        (f"certificate (SHA-256 {old})", False, True), (f"certificate (SHA-256 {new})", True, False)]
    assert changes[1].after is not None and changes[1].after.startswith("signing, not after ")


def test_endpoints_and_name_id_formats_show(metadata_dir: Path, sp_keys: SpKeys) -> None:
    current = _view(metadata_dir, _xml(sp_keys))
    proposed = replace(current, acs=(*current.acs, Endpoint(BINDING_HTTP_ARTIFACT, f"{APP}/artifact", "2")),
                       name_id_formats=(NAMEID_FORMAT_TRANSIENT,))

    changes = diff_sp(current, proposed)

    assert changes == (
        Change(APP, "assertion_consumer_services", f"{APP}/acs (HTTP-POST)",
               f"{APP}/acs (HTTP-POST), {APP}/artifact (HTTP-Artifact)"),
        Change(APP, "name_id_formats", NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT),
    )


def test_a_new_app_shows_every_field_added_and_a_removed_one_every_field_gone(metadata_dir: Path,
                                                                              sp_keys: SpKeys) -> None:
    view = _view(metadata_dir, _xml(sp_keys, display_name="Permits"))

    added, removed = diff_sp(None, view), diff_sp(view, None)

    assert Change(APP, "display_name", None, "Permits") in added
    assert all(c.before is None and c.after for c in added)
    assert [(c.field, c.before) for c in removed] == [(c.field, c.after) for c in added]
    assert diff_sp(view, view) == () and diff_sp(None, None) == ()


def test_the_preview_of_an_update_carries_its_diff(metadata_dir: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "permits.xml", APP, sp_keys, display_name="Permits")

    preview = preview_sp(metadata_dir, _xml(sp_keys, display_name="Permits v2"), {}, "permits")

    assert preview.changes == (Change(APP, "display_name", "Permits", "Permits v2"),)
    assert str(preview.changes[0]) == f"{APP}  display_name: Permits -> Permits v2"
