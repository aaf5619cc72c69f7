"""Adding and removing IdP metadata sources through the admin API (issue 19; ``broker.web.admin_api.source_files``),
over real HTTP: a CI client with ``admin:manage-parties`` previews and adds a signed IdP metadata file with its
signer's certificate (its identity providers are then listed), is refused a tampered or expired one with nothing
written, adds a federation feed by URL (served on 127.0.0.1) that is fetched at once, and removes both, each change
audited with the client; a person's write needs a recent sign-in, a support role none at all."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from broker.core.audit import AuditKind
from broker.core.operators import Role
from tests.flows.admin_api_support import (
    AdminWorld,
    api,
    automation_client,
    bearer,
    client_token,
    conforms,
    csrf_token,
    staff,
)
from tests.flows.federation import FixedClock
from tests.flows.federation_feed_support import (
    entity_id,
    federation_certificate,
    served_feed,
    signed_aggregate,
    signed_document,
)
from tests.flows.portal_support import services
from tests.peers.browser import Browser

WRITER = "ci-writer"


def _file(name: str, document: bytes) -> dict[str, Any]:
    return {"kind": "idp-file", "name": name, "document": document.decode(),
            "certificate": federation_certificate().decode()}


def test_a_ci_client_adds_an_idp_file_and_a_feed_and_removes_them(world: AdminWorld) -> None:
    reader = client_token(world, "ci-reader", automation_client(world, "ci-reader", "admin:view-parties"))
    writer = client_token(world, WRITER, automation_client(world, WRITER, "admin:view-parties admin:manage-parties"))
    folder = world.federation.folder

    previewed = bearer(world, writer, "POST", "/federations/preview", _file("harbour", signed_document(3)))
    assert previewed.status_code == 200, previewed.text
    conforms(previewed, "preview-federation-source")
    shown = previewed.json()
    assert (shown["problems"], shown["entity_count"], shown["replaces"]) == ([], 3, False)
    assert entity_id(0) in [e["entity_id"] for e in shown["entities"]]
    assert not (folder / "metadata" / "saml-idp" / "harbour.xml").exists()
    refused = bearer(world, reader, "POST", "/federations", _file("harbour", signed_document(3)))
    assert refused.status_code == 403 and "insufficient_scope" in refused.headers["WWW-Authenticate"]

    added = bearer(world, writer, "POST", "/federations", _file("harbour", signed_document(3)))
    assert added.status_code == 200, added.text
    conforms(added, "add-federation-source")
    assert added.json()["files"] == ["metadata/saml-idp/harbour.pem", "metadata/saml-idp/harbour.xml"]
    listed = bearer(world, reader, "GET", "/federations/saml-idp/harbour/entities")
    assert len(listed.json()["entities"]) == 3

    tampered = bearer(world, writer, "POST", "/federations", _file("tampered", signed_document(2, tamper=True)))
    expired = bearer(world, writer, "POST", "/federations/preview",
                     _file("expired", signed_document(2, valid_for=-timedelta(minutes=5))))
    assert (tampered.status_code, tampered.json()["error"]) == (409, "refused") and "signature" in tampered.text
    assert any("expired" in p for p in expired.json()["problems"])
    assert sorted(p.name for p in (folder / "metadata" / "saml-idp").iterdir()) == ["harbour.pem", "harbour.xml"]

    with served_feed() as feed:
        feed.document = signed_aggregate(4)
        fed = bearer(world, writer, "POST", "/federations", {
            "kind": "federation", "name": "metro", "url": feed.url, "refresh_interval": 600,
            "certificate": federation_certificate().decode()})
        assert fed.status_code == 200, fed.text
        (source,) = [s for s in bearer(world, reader, "GET", "/federations").json()["sources"]
                     if s["name"] == "federation/metro"]
        assert (source["entities"], source["last_error"]) == (4, None)

    for kind, name in (("idp-file", "harbour"), ("federation", "metro")):
        removed = bearer(world, writer, "POST", "/federations/remove", {"kind": kind, "name": name})
        assert removed.status_code == 200, removed.text
        conforms(removed, "remove-federation-source")
    assert bearer(world, writer, "POST", "/federations/remove", {"kind": "federation", "name": "metro"}) \
        .status_code == 404
    assert bearer(world, reader, "GET", "/federations/saml-idp/harbour/entities").status_code == 404
    assert not (folder / "certs" / "federations" / "metro.pem").exists()
    directory = services(world.federation).idp_directory
    assert directory is not None and directory.get(entity_id(0)) is None
    records = [r for r in services(world.federation).audit.events(limit=50)
               if r.kind == AuditKind.REGISTRATION_CHANGED.value and r.upstream]
    assert {r.upstream for r in records} == {"saml-idp/harbour", "federation/metro"}
    assert all(f"by client {WRITER}" in (r.reason or "") for r in records)


def test_a_persons_write_needs_a_recent_sign_in_and_support_may_not(world: AdminWorld, browser: Browser) -> None:
    staff(world, browser, Role.ADMIN)
    token = csrf_token(world, browser)
    world.federation.set_clock(FixedClock(services(world.federation).clock.now() + timedelta(minutes=6)))

    stale = api(world, browser, "POST", "/federations", _file("late", signed_document(1)), csrf=token)
    preview = api(world, browser, "POST", "/federations/preview", _file("late", signed_document(1)), csrf=token)

    assert (stale.status_code, stale.json()["error"]) == (403, "fresh_sign_in_required")
    assert preview.status_code == 200 and preview.json()["problems"] == []
    assert not (world.federation.folder / "metadata" / "saml-idp" / "late.xml").exists()


def test_support_may_not_add_a_source(world: AdminWorld, browser: Browser) -> None:
    staff(world, browser, Role.SUPPORT, Role.AUDITOR)
    token = csrf_token(world, browser)

    added = api(world, browser, "POST", "/federations", _file("x", signed_document(1)), csrf=token)
    removed = api(world, browser, "POST", "/federations/remove", {"kind": "idp-file", "name": "x"}, csrf=token)

    assert [(a.status_code, a.json()["error"]) for a in (added, removed)] == [(403, "forbidden")] * 2
    assert not (world.federation.folder / "metadata" / "saml-idp" / "x.xml").exists()
