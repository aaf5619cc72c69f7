"""Downstream SAML SPs registered by metadata files in ``metadata/saml-sp/``: real pysaml2 SP metadata in,
``SamlSp`` out; every unusable file skipped and reported while the good ones stay registered."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.core.claims import NAMEFORMAT_URI
from broker.core.model import Protocol
from broker.keys.keyring import KeyRing
from broker.registry import SamlSp
from broker.registry.saml_sps import SP_FOLDER, load_sp_catalog
from tests.flows.saml_peers import SpKeys
from tests.sp_metadata import sp_metadata, write_sp_metadata

GOOD = "https://permits.city.example.org"


@pytest.fixture
def metadata_dir(tmp_path: Path) -> Path:
    (tmp_path / SP_FOLDER).mkdir()
    return tmp_path


def _write(metadata_dir: Path, name: str, text: str) -> Path:
    path = metadata_dir / SP_FOLDER / name
    path.write_text(text)
    return path


def test_real_sp_metadata_registers_with_everything_the_broker_needs(metadata_dir: Path, sp_keys: SpKeys) -> None:
    source = write_sp_metadata(metadata_dir / SP_FOLDER / "permits.xml", GOOD, sp_keys,
                               display_name="Parking permits")

    catalog = load_sp_catalog(metadata_dir)

    assert catalog.problems == ()
    assert list(catalog.sps) == [GOOD]
    sp = catalog.sps[GOOD]
    assert isinstance(sp, SamlSp)
    assert sp.display_name == "Parking permits"
    # mail / givenName / sn, requested by their urn:oid names, become the broker's claims
    assert sp.requested_claims == {"email", "given_name", "family_name"}
    assert sp.required_claims == {"email", "given_name", "family_name"}
    assert sp.attribute_name_format == NAMEFORMAT_URI
    assert sp.authn_requests_signed is True
    assert sp.acs_post_urls == (GOOD + "/acs",)
    assert sp.source == source
    party = sp.party()
    assert (party.party_id, party.protocol, party.display_name) == (GOOD, Protocol.SAML, "Parking permits")
    assert party.requested_claims == {"email", "given_name", "family_name"}
    # the pysaml2 store handed to the IdP adapter knows the SP's certificate for signature checks
    [(_, published)] = catalog.metadata.certs(GOOD, "spsso", "signing")
    published_b64 = "".join(line for line in published.split() if "-" not in line and line != "CERTIFICATE")
    assert published_b64 == KeyRing(sp_keys.key_file, sp_keys.cert_file).cert_base64()


def test_unsigned_requests_and_optional_attributes(metadata_dir: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "library.xml", "https://library.example.org", sp_keys,
                      sign_requests=False, requested=("mail",), optional=("givenName", "displayName"))

    sp = load_sp_catalog(metadata_dir).sps["https://library.example.org"]

    assert sp.authn_requests_signed is False
    assert sp.required_claims == {"email"}
    assert sp.requested_claims == {"email", "given_name", "name"}


@pytest.mark.parametrize(("options", "expected"), [
    ({"organization": "City Library"}, "City Library"),  # md:OrganizationDisplayName
    ({}, "plain.example.org"),  # no name published at all: the entity ID's host, never the entity ID
])
def test_display_name_falls_back(metadata_dir: Path, sp_keys: SpKeys, options: dict[str, str],
                                 expected: str) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "plain.xml", "https://plain.example.org", sp_keys, **options)

    assert load_sp_catalog(metadata_dir).sps["https://plain.example.org"].display_name == expected


def test_broken_and_doctype_files_are_reported_and_the_good_one_stays(metadata_dir: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "good.xml", GOOD, sp_keys)
    other = sp_metadata("https://evil.example.org", sp_keys)
    _write(metadata_dir, "broken.xml", other[: len(other) // 2])  # cut off mid-document
    # an internal subset declaring an entity that the document then uses
    _write(metadata_dir, "entity.xml", '<?xml version="1.0"?>\n<!DOCTYPE md [<!ENTITY acs "https://evil.example.org/acs">]>\n'
           + other.replace("https://evil.example.org/acs", "&acs;"))
    # a DOCTYPE without entities, pointing at an external DTD (never fetched)
    _write(metadata_dir, "external-dtd.xml",
           '<!DOCTYPE md:EntityDescriptor SYSTEM "http://127.0.0.1:9/metadata.dtd">\n' + other)

    catalog = load_sp_catalog(metadata_dir)

    assert list(catalog.sps) == [GOOD]
    assert len(catalog.problems) == 3
    by_file = {p.split(":", 1)[0]: p for p in catalog.problems}
    assert set(by_file) == {"broken.xml", "entity.xml", "external-dtd.xml"}
    assert "not well-formed" in by_file["broken.xml"]
    assert "DOCTYPE" in by_file["entity.xml"]
    assert "DOCTYPE" in by_file["external-dtd.xml"]
    # nothing of the skipped files reaches the store the IdP adapter uses
    assert "https://evil.example.org" not in catalog.metadata.keys()  # noqa: SIM118 - not iterable
    assert catalog.metadata.keys() == [GOOD]


def test_a_file_that_describes_no_sp_is_reported(metadata_dir: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "good.xml", GOOD, sp_keys)
    _write(metadata_dir, "page.xml", "<html><body>metadata moved</body></html>")

    catalog = load_sp_catalog(metadata_dir)

    assert list(catalog.sps) == [GOOD]
    assert catalog.problems == ("page.xml: describes no SAML service provider; skipped",)


def test_an_sp_without_http_post_acs_is_skipped(metadata_dir: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "artifact.xml", "https://artifact.example.org", sp_keys,
                      artifact_acs_only=True)

    catalog = load_sp_catalog(metadata_dir)

    assert catalog.sps == {}
    assert catalog.problems == (
        "artifact.xml: https://artifact.example.org has no HTTP-POST AssertionConsumerService; skipped",)


def test_the_same_entity_in_two_files_keeps_the_first_and_reports_the_second(
        metadata_dir: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "a-permits.xml", GOOD, sp_keys, display_name="First")
    write_sp_metadata(metadata_dir / SP_FOLDER / "b-permits.xml", GOOD, sp_keys, display_name="Second")

    catalog = load_sp_catalog(metadata_dir)

    assert catalog.sps[GOOD].display_name == "First"
    assert catalog.sps[GOOD].source.name == "a-permits.xml"
    assert catalog.problems == (f"b-permits.xml: {GOOD} is already registered by a-permits.xml; skipped",)


def test_only_xml_files_are_read_and_a_missing_folder_is_empty(tmp_path: Path, sp_keys: SpKeys) -> None:
    empty = load_sp_catalog(tmp_path)  # no saml-sp folder at all
    assert (empty.sps, empty.problems) == ({}, ())

    (tmp_path / SP_FOLDER).mkdir()
    (tmp_path / SP_FOLDER / "README.txt").write_text("drop SP metadata here")
    (tmp_path / SP_FOLDER / "permits.xml.disabled").write_text(sp_metadata(GOOD, sp_keys))

    catalog = load_sp_catalog(tmp_path)

    assert (catalog.sps, catalog.problems) == ({}, ())
