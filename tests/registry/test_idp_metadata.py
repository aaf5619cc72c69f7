"""Parsing and trusting IdP metadata: hardened parsing, one broken entity skipped, pinned signature, validity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.registry.idp_metadata import MetadataError, extract_idps, parse_document
from broker.registry.metadata_signature import (
    MetadataRefused,
    document_validity,
    is_signed,
    parse_duration,
    verify_signature,
)
from tests.registry.aggregate import (
    ASSURANCE,
    BROKEN_KINDS,
    POST,
    REDIRECT,
    entity_id,
    make_aggregate,
    session_material,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=7)


def _signed(**kwargs: object) -> bytes:
    m = session_material()
    return make_aggregate(5, m.federation, m.certs, valid_until=LATER, **kwargs)  # type: ignore[arg-type]


def test_extracts_every_field_of_an_idp() -> None:
    m = session_material()
    entities, problems = extract_idps(parse_document(_signed()), "fed", now=NOW)
    assert problems == []
    assert [e.entity_id for e in entities] == [entity_id(i) for i in range(5)]
    idp = entities[2]
    assert idp.source == "fed"
    assert idp.display_names == (("en", "University of Example 2"), ("fr", "Université d'Exemple 2"))
    assert idp.display_name("fr-CH") == "Université d'Exemple 2" and idp.display_name("de") == "University of Example 2"
    assert idp.sso_services == ((REDIRECT, "https://idp2.example.org/sso/redirect"),
                                (POST, "https://idp2.example.org/sso/post"))
    assert idp.slo_services == ((REDIRECT, "https://idp2.example.org/slo", "https://idp2.example.org/slo/response"),)
    assert idp.signing_certs == (m.certs[2],) and idp.encryption_certs == (m.certs[0],)
    assert idp.logos == (("https://idp2.example.org/logo.png", 80, 60, None),)  # the http:// logo is dropped
    assert idp.keywords == (("en", "university"), ("en", "research"), ("en", "campus2"), ("en", "city hall"))
    assert idp.information_url == "https://idp2.example.org/about"
    assert idp.want_authn_requests_signed is True and entities[1].want_authn_requests_signed is False
    assert idp.attribute_values(ASSURANCE) == ("https://refeds.org/sirtfi",)
    assert idp.registration_authority == "https://federation.example.org/"


def test_organization_display_name_then_entity_id_are_fallbacks() -> None:
    doc = (b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://solo.example">'
           b'<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
           b'<md:SingleSignOnService Binding="b" Location="https://solo.example/sso"/></md:IDPSSODescriptor>'
           b'<md:Organization><md:OrganizationDisplayName xml:lang="nl">Gemeente Solo</md:OrganizationDisplayName>'
           b'</md:Organization></md:EntityDescriptor>')
    (solo,), _ = extract_idps(parse_document(doc), "local")
    assert solo.display_name("en") == "Gemeente Solo"
    bare = doc.replace(b"OrganizationDisplayName", b"OrganizationName")
    (solo,), _ = extract_idps(parse_document(bare), "local")
    assert solo.display_name() == "https://solo.example"


@pytest.mark.parametrize("kind", BROKEN_KINDS)
def test_one_broken_entity_is_skipped_and_reported_while_the_rest_load(kind: str) -> None:
    m = session_material()
    doc = make_aggregate(6, m.federation, m.certs, valid_until=LATER, broken={3: kind})
    root = parse_document(doc)
    verify_signature(root, m.federation.cert_pem)  # the aggregate itself is fine
    entities, problems = extract_idps(root, "fed", now=NOW)
    ids = {e.entity_id for e in entities}
    if kind == "duplicate":  # entity 3 claims entity 0's ID: neither copy is trusted
        assert ids == {entity_id(i) for i in (1, 2, 4, 5)}
        assert problems == [f"fed: entityID {entity_id(0)!r} occurs 2 times; all copies skipped"]
    else:
        assert ids == {entity_id(i) for i in (0, 1, 2, 4, 5)}
        assert len(problems) == 1 and problems[0].startswith("fed: entity #4 ")


def test_an_expired_entity_inside_a_valid_aggregate_is_skipped() -> None:
    doc = _signed().replace(f'entityID="{entity_id(1)}"'.encode(),
                            f'entityID="{entity_id(1)}" validUntil="2026-11-01T00:00:00Z"'.encode())
    entities, problems = extract_idps(parse_document(doc), "fed", now=NOW)
    assert entity_id(1) not in {e.entity_id for e in entities} and "validUntil" in problems[0]


def test_max_entities_refuses_the_document() -> None:
    with pytest.raises(MetadataError, match="max_entities = 4"):
        extract_idps(parse_document(_signed()), "fed", max_entities=4)


LAUGHS = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">'
          b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]>\n'
          b'<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">&lol3;</md:EntitiesDescriptor>')
EXTERNAL = (b'<!DOCTYPE x [<!ENTITY ext SYSTEM "file:///etc/passwd">]>'
            b'<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">&ext;</md:EntitiesDescriptor>')


@pytest.mark.parametrize("document", [
    LAUGHS,
    EXTERNAL,
    # past the quick check of the first bytes: refused after parsing, still without expanding anything
    LAUGHS.replace(b"<!DOCTYPE", b"<!--" + b"x" * 5000 + b"-->\n<!DOCTYPE"),
    EXTERNAL.replace(b"<!DOCTYPE", b"<!--" + b"x" * 5000 + b"-->\n<!DOCTYPE"),
    b'<!--' + b"x" * 5000 + b'--><!DOCTYPE md:EntitiesDescriptor SYSTEM "http://127.0.0.1:9/x.dtd">'
    b'<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"/>',
])
def test_doctype_and_entity_expansion_are_refused(document: bytes) -> None:
    with pytest.raises(MetadataError, match=r"DOCTYPE|external"):
        parse_document(document)


@pytest.mark.parametrize("document", [b"<md:Entities", b"<other xmlns='urn:x'/>"])
def test_not_metadata_is_refused(document: bytes) -> None:
    with pytest.raises(MetadataError):
        parse_document(document)


def test_signature_by_the_pinned_certificate_verifies() -> None:
    root = parse_document(_signed())
    assert is_signed(root)
    verify_signature(root, session_material().federation.cert_pem)
    verify_signature(parse_document(_signed(reference_uri="")), session_material().federation.cert_pem)


def test_rollover_pem_with_two_certificates_accepts_either() -> None:
    m = session_material()
    verify_signature(parse_document(_signed()), m.other.cert_pem + m.federation.cert_pem)


def test_tampered_document_is_refused() -> None:
    root = parse_document(_signed(tamper=True))
    with pytest.raises(MetadataRefused, match="invalid"):
        verify_signature(root, session_material().federation.cert_pem)


def test_signature_by_another_key_is_refused_even_with_its_certificate_in_keyinfo() -> None:
    m = session_material()
    doc = make_aggregate(3, m.other, m.certs, valid_until=LATER)
    assert b"<ds:X509Certificate>" in doc  # the attacker's certificate rides along in KeyInfo
    with pytest.raises(MetadataRefused, match="invalid"):
        verify_signature(parse_document(doc), m.federation.cert_pem)


def test_sha1_is_refused() -> None:
    with pytest.raises(MetadataRefused, match="SHA-1"):
        verify_signature(parse_document(_signed(sha1=True)), session_material().federation.cert_pem)


def test_reference_to_another_element_is_refused() -> None:
    doc = _signed().replace(b'URI="#_fed20261124"', b'URI="#_elsewhere"')
    with pytest.raises(MetadataRefused, match="does not point to the document element"):
        verify_signature(parse_document(doc), session_material().federation.cert_pem)


def test_a_signature_on_a_nested_element_does_not_count() -> None:
    m = session_material()
    root = parse_document(make_aggregate(2, None, m.certs, valid_until=LATER))
    assert not is_signed(root)
    with pytest.raises(MetadataRefused, match="expected one ds:Signature"):
        verify_signature(root, m.federation.cert_pem)


def test_validity_expired_document_is_refused_and_cache_duration_is_read() -> None:
    m = session_material()
    fresh = document_validity(parse_document(make_aggregate(1, None, m.certs, valid_until=LATER,
                                                            cache_duration="P1DT6H")), NOW)
    assert fresh.valid_until == LATER.replace(microsecond=0) and fresh.cache_duration == timedelta(hours=30)
    expired = parse_document(make_aggregate(1, None, m.certs, valid_until=NOW - timedelta(seconds=1)))
    with pytest.raises(MetadataRefused, match="expired"):
        document_validity(expired, NOW)


@pytest.mark.parametrize(("text", "expected"), [
    ("PT6H", timedelta(hours=6)), ("P1D", timedelta(days=1)), ("PT90M", timedelta(minutes=90)),
    ("P1W", timedelta(days=7)), ("PT0.5S", timedelta(seconds=0.5)), ("P1Y", timedelta(days=365)),
])
def test_iso_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "6H", "-PT6H", "P1DT", "PT6X"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_a_file_is_parsed_with_the_same_rules(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.xml", tmp_path / "bad.xml"
    good.write_bytes(_signed())
    bad.write_bytes(LAUGHS.replace(b"<!DOCTYPE", b"<!--" + b"x" * 5000 + b"-->\n<!DOCTYPE"))
    verify_signature(parse_document(good), session_material().federation.cert_pem)
    with pytest.raises(MetadataError, match="DOCTYPE"):
        parse_document(bad)


def test_only_https_endpoints_are_kept() -> None:
    doc = _signed().replace(b'Location="https://idp1.example.org/sso/redirect"', b'Location="http://idp1.example.org/sso"')
    doc = doc.replace(b'Location="https://idp1.example.org/sso/post"', b'Location="javascript:alert(1)"')
    doc = doc.replace(b'Location="https://idp2.example.org/sso/post"', b'Location="http://idp2.example.org/sso"')
    doc = doc.replace(b'ResponseLocation="https://idp3.example.org/slo/response"', b'ResponseLocation="http://x"')
    entities, problems = extract_idps(parse_document(doc), "fed", now=NOW)
    by_id = {e.entity_id: e for e in entities}
    assert entity_id(1) not in by_id and "https Location" in problems[0]
    assert by_id[entity_id(2)].sso_services == ((REDIRECT, "https://idp2.example.org/sso/redirect"),)
    assert by_id[entity_id(3)].slo_services == ((REDIRECT, "https://idp3.example.org/slo", None),)


def test_an_expired_nested_group_is_skipped() -> None:
    m = session_material()
    inner = make_aggregate(2, None, m.certs).split(b"?>", 1)[1].replace(
        b'Name="https://federation.example.org"', b'Name="old-group" validUntil="2026-01-01T00:00:00Z"')
    outer = make_aggregate(1, None, m.certs).replace(b"</md:EntitiesDescriptor>", inner + b"</md:EntitiesDescriptor>")
    outer = outer.replace(entity_id(0).encode(), b"https://outer.example.org", 1)
    entities, problems = extract_idps(parse_document(outer), "fed", now=NOW)
    assert [e.entity_id for e in entities] == ["https://outer.example.org"]
    assert problems[0].startswith("fed: nested EntitiesDescriptor 'old-group'")
    entities, _ = extract_idps(parse_document(outer), "fed", now=datetime(2025, 12, 1, tzinfo=UTC))
    assert len(entities) == 3  # before that date the group counts
