"""Adding and removing IdP metadata sources at the console (issue 19; ``broker.web.console_sources``), over real
HTTP: a signed IdP metadata file with its signer's certificate is checked (signature, validUntil) in a preview that
writes nothing, then written and its identity providers offered; a tampered or expired file is refused; a
federation feed added by URL (served on 127.0.0.1, signed by the pinned key) is fetched and its identity providers
show; removing a source takes them away; only ``manage-parties`` may, and only after a recent sign-in."""

from __future__ import annotations

from datetime import timedelta

import requests

from broker.core.audit import AuditKind
from broker.core.operators import Role
from tests.flows.console_support import console_operator
from tests.flows.federation import Federation, FixedClock
from tests.flows.federation_feed_support import (
    entity_id,
    federation_certificate,
    served_feed,
    signed_aggregate,
    signed_document,
)
from tests.flows.portal_support import services
from tests.peers.browser import Browser

PAGE = "/console/federations/"


def _preview(federation: Federation, browser: Browser, kind: str, **fields: str) -> requests.Response:
    form = browser.get(f"{federation.url}{PAGE}sources/new", params={"kind": kind})
    assert form.status_code == 200, form.text[:300]
    return browser.submit(form, fields, form="source-upload")


def _idp_file(federation: Federation, browser: Browser, name: str, document: bytes) -> requests.Response:
    return _preview(federation, browser, "idp-file", name=name, document_text=document.decode(),
                    certificate_text=federation_certificate().decode())


def _offered(federation: Federation, entity: str) -> bool:
    directory = services(federation).idp_directory
    assert directory is not None
    return directory.get(entity) is not None


def _changes(federation: Federation) -> list[tuple[str | None, str]]:
    return [(r.upstream, r.reason or "") for r in services(federation).audit.events(limit=50)
            if r.kind == AuditKind.REGISTRATION_CHANGED.value and (r.upstream or "").startswith(("saml-idp/", "fed"))]


def test_a_signed_idp_file_is_previewed_then_written_and_offered_then_removed(federation: Federation,
                                                                              browser: Browser) -> None:
    operator = console_operator(federation, browser, Role.OPERATOR)
    listing = browser.get(federation.url + PAGE)
    assert "Add an IdP metadata file" in listing.text and "Add a federation feed" in listing.text
    xml = federation.folder / "metadata" / "saml-idp" / "harbour.xml"

    preview = _idp_file(federation, browser, "harbour", signed_document(3))

    assert preview.status_code == 200 and 'id="apply"' in preview.text, preview.text[:3000]
    assert entity_id(2) in preview.text and "University of Example 1" in preview.text
    assert "checked against the certificate given" in preview.text and "SHA-256" in preview.text
    assert not xml.exists() and not _offered(federation, entity_id(1))  # a preview writes nothing

    applied = browser.submit(preview, form="apply")

    assert applied.status_code == 200 and 'id="applied"' in applied.text, applied.text[:2000]
    assert xml.read_bytes().startswith(b"<?xml") and xml.with_suffix(".pem").read_bytes() == federation_certificate()
    assert _offered(federation, entity_id(1))
    entities = browser.get(f"{federation.url}{PAGE}entities", params={"source": "saml-idp/harbour"})
    assert entities.text.count("<code>https://idp") == 3
    assert any(name == "saml-idp/harbour" and f"added idp-file source by operator {operator}" in reason
               for name, reason in _changes(federation))

    removed = browser.submit(browser.get(federation.url + PAGE), form="remove-saml-idp-harbour")

    assert removed.status_code == 200 and "saml-idp/harbour" not in removed.text
    assert not xml.exists() and not xml.with_suffix(".pem").exists() and not _offered(federation, entity_id(1))
    assert any(reason.startswith("removed idp-file source") for name, reason in _changes(federation))


def test_a_tampered_or_expired_file_is_refused_with_its_problems_and_nothing_written(federation: Federation,
                                                                                     browser: Browser) -> None:
    console_operator(federation, browser, Role.ADMIN)

    tampered = _idp_file(federation, browser, "tampered", signed_document(2, tamper=True))
    expired = _idp_file(federation, browser, "expired", signed_document(2, valid_for=-timedelta(hours=1)))
    unsigned_for_a_pin = _idp_file(federation, browser, "unsigned", _unsigned())

    assert tampered.status_code == 422 and 'id="problems"' in tampered.text and "signature" in tampered.text
    assert expired.status_code == 422 and "expired" in expired.text
    assert unsigned_for_a_pin.status_code == 422 and "not signed" in unsigned_for_a_pin.text
    for page in (tampered, expired, unsigned_for_a_pin):
        assert 'id="apply"' not in page.text
    assert not list((federation.folder / "metadata").glob("saml-idp/*"))
    assert not _changes(federation)


def _unsigned() -> bytes:
    """The test aggregate with its signature cut out (a pinned certificate makes one required)."""
    signed = signed_document(2).decode()
    start, end = signed.index("<ds:Signature"), signed.index("</ds:Signature>") + len("</ds:Signature>")
    return (signed[:start] + signed[end:]).encode()


def test_a_feed_added_by_url_is_fetched_and_its_identity_providers_show(federation: Federation,
                                                                        browser: Browser) -> None:
    console_operator(federation, browser, Role.OPERATOR)
    toml = federation.folder / "metadata" / "federations" / "metro.toml"
    pinned = federation.folder / "certs" / "federations" / "metro.pem"
    with served_feed() as feed:
        feed.document = signed_aggregate(4)
        preview = _preview(federation, browser, "federation", name="metro", url=feed.url, refresh_interval="600",
                           certificate_text=federation_certificate().decode())
        assert preview.status_code == 200 and 'id="apply"' in preview.text, preview.text[:3000]
        assert feed.url in preview.text and "SHA-256" in preview.text and not toml.exists()

        applied = browser.submit(preview, form="apply")

        assert applied.status_code == 200 and 'id="applied"' in applied.text, applied.text[:2000]
        assert 'signing_cert_file = "certs/federations/metro.pem"' in toml.read_text()
        assert pinned.read_bytes() == federation_certificate() and _offered(federation, entity_id(3))
        listing = browser.get(federation.url + PAGE)
        row = listing.text.split(">federation/metro</a>")[1].split("</tr>")[0]
        assert "<td>4</td>" in row, row

        browser.submit(listing, form="remove-federation-metro")

    assert not toml.exists() and not pinned.exists() and not _offered(federation, entity_id(3))


def test_roles_without_manage_parties_may_not_add_or_remove(federation: Federation, browser: Browser) -> None:
    console_operator(federation, browser, Role.SUPPORT, Role.AUDITOR)
    listing = browser.get(federation.url + PAGE)
    assert listing.status_code == 200 and "Add an IdP metadata file" not in listing.text
    token = listing.text.split('name="csrf_token" value="')[1].split('"')[0]
    sources = f"{federation.url}{PAGE}sources"

    form = browser.get(f"{sources}/new")
    posted = browser.post(f"{sources}/preview", {"csrf_token": token, "kind": "idp-file", "name": "x",
                                                 "document_text": signed_document(1).decode()}, initiator=sources)
    removed = browser.post(f"{sources}/remove", {"csrf_token": token, "name": "saml-idp/x"}, initiator=sources)

    assert (form.status_code, posted.status_code, removed.status_code) == (403, 403, 403)


def test_applying_or_removing_needs_a_recent_sign_in(federation: Federation, browser: Browser) -> None:
    console_operator(federation, browser, Role.ADMIN)
    preview = _idp_file(federation, browser, "late", signed_document(1))
    assert 'id="apply"' in preview.text
    federation.set_clock(FixedClock(services(federation).clock.now() + timedelta(minutes=6)))

    applied = browser.submit(preview, form="apply")

    assert "This needs a recent sign-in" in applied.text and 'id="applied"' not in applied.text
    assert not (federation.folder / "metadata" / "saml-idp" / "late.xml").exists()
