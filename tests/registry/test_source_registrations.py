"""Adding IdP metadata sources by file (issue 19; ``broker.registry.source_registrations``), without a web app: a
pinned file stays pinned when replaced without a certificate, a feed may not take over another feed's pinned
certificate, and removing a feed keeps a certificate another one pins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.core.source_admin import RegistrationRefused, SourceDraft, SourceKind
from broker.registry.source_registrations import FileSources
from tests.registry.aggregate import make_aggregate, make_entity_certs, make_federation_key

KEY = make_federation_key()
CERTS = make_entity_certs(2)


def _document(count: int, *, signed: bool = True) -> bytes:
    return make_aggregate(count, KEY if signed else None, CERTS, valid_until=datetime.now(UTC) + timedelta(days=1))


def _sources(tmp_path: Path) -> FileSources:
    (tmp_path / "metadata").mkdir()
    return FileSources(tmp_path / "metadata", tmp_path, None)


def test_a_pinned_file_replaced_without_a_certificate_stays_pinned(tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    sources.apply(SourceDraft(SourceKind.IDP_FILE, "city", _document(2), KEY.cert_pem))

    signed = sources.preview(SourceDraft(SourceKind.IDP_FILE, "city", _document(3)))
    unsigned = sources.preview(SourceDraft(SourceKind.IDP_FILE, "city", _document(3, signed=False)))

    assert signed.problems == () and signed.replaces and signed.entity_count == 3
    assert {c.field for c in signed.changes} == {"file", "identity providers", "identity provider"}
    assert unsigned.problems and "not signed" in unsigned.problems[0]
    with pytest.raises(RegistrationRefused):
        sources.apply(SourceDraft(SourceKind.IDP_FILE, "city", _document(3, signed=False)))
    assert (tmp_path / "metadata" / "saml-idp" / "city.pem").read_bytes() == KEY.cert_pem


def test_a_feed_may_not_take_another_feeds_pinned_certificate(tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    feed = SourceDraft(SourceKind.FEDERATION, "metro", certificate=KEY.cert_pem, url="https://mds.example.org/md.xml",
                       refresh_interval=600)
    sources.apply(feed)
    other = tmp_path / "metadata" / "federations" / "other.toml"
    other.write_text('url = "https://other.example.org/md.xml"\nsigning_cert_file = "certs/federations/metro.pem"\n')

    clash = sources.preview(SourceDraft(SourceKind.FEDERATION, "metro", certificate=KEY.cert_pem,
                                        url="https://mds.example.org/new.xml"))
    removed = sources.remove(SourceKind.FEDERATION, "metro")

    assert any("federation/other pins certs/federations/metro.pem" in p for p in clash.problems)
    assert removed.files == ("metadata/federations/metro.toml",)
    assert (tmp_path / "certs" / "federations" / "metro.pem").is_file()


def test_a_feed_needs_an_https_url_and_a_certificate(tmp_path: Path) -> None:
    sources = _sources(tmp_path)

    plain = sources.preview(SourceDraft(SourceKind.FEDERATION, "metro", certificate=KEY.cert_pem,
                                        url="http://mds.example.org/md.xml"))
    bare = sources.preview(SourceDraft(SourceKind.FEDERATION, "metro", url="https://mds.example.org/md.xml"))
    named = sources.preview(SourceDraft(SourceKind.FEDERATION, "../x", certificate=KEY.cert_pem,
                                        url="https://mds.example.org/md.xml"))

    assert any("https" in p for p in plain.problems)
    assert any("certificate" in p for p in bare.problems) and named.problems
    assert not (tmp_path / "metadata" / "federations").exists()
