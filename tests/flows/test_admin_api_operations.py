"""Federations, signing keys and the release policy through the admin API (issue 19), over real HTTP: a CI client
with ``admin:view-parties`` reads the metadata sources, a source's identity providers, the keys and the policy,
each answer as the OpenAPI document describes it; "refresh now" needs ``admin:manage-parties`` and a rotation step
``admin:manage-keys``, each audited with the client; a person's rotation needs a recent sign-in."""

from __future__ import annotations

from datetime import timedelta

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
from tests.flows.federation_feed_support import add_feed, served_feed, signed_aggregate
from tests.flows.portal_support import services
from tests.peers.browser import Browser

READER, WRITER = "ci-reader", "ci-writer"



def _audited(world: AdminWorld, kind: AuditKind) -> list[str]:
    return [r.reason or "" for r in services(world.federation).audit.events(limit=50) if r.kind == kind.value]


def test_a_ci_client_reads_the_sources_and_refreshes_one_with_manage_parties(world: AdminWorld) -> None:
    reader = client_token(world, READER, automation_client(world, READER, "admin:view-parties"))
    writer = client_token(world, WRITER, automation_client(world, WRITER, "admin:view-parties admin:manage-parties"))
    with served_feed() as feed:
        feed.document = signed_aggregate(3)
        name = add_feed(world.federation, feed)

        listed = bearer(world, reader, "GET", "/federations")
        assert listed.status_code == 200, listed.text
        conforms(listed, "list-federations")
        (source,) = [s for s in listed.json()["sources"] if s["name"] == name]
        assert (source["entities"], source["location"], source["last_error"]) == (3, feed.url, None)
        found = bearer(world, reader, "GET", "/federations/federation/city/entities?q=Example+1")
        conforms(found, "list-federation-entities")
        assert [e["display_name"] for e in found.json()["entities"]] == ["University of Example 1"]
        assert bearer(world, reader, "GET", "/federations/federation/none/entities").status_code == 404

        feed.document = signed_aggregate(4)
        refused = bearer(world, reader, "POST", "/federations/refresh", {"name": name})
        assert refused.status_code == 403 and "insufficient_scope" in refused.headers["WWW-Authenticate"]
        refreshed = bearer(world, writer, "POST", "/federations/refresh", {"name": name})

    assert refreshed.status_code == 200, refreshed.text
    conforms(refreshed, "refresh-federation")
    assert refreshed.json()["finished"] is True and refreshed.json()["source"]["entities"] == 4
    assert any(f"by client {WRITER}" in r for r in _audited(world, AuditKind.METADATA_REFRESHED))


def test_a_ci_client_stages_keys_with_manage_keys_and_reads_the_policy(world: AdminWorld) -> None:
    reader = client_token(world, READER, automation_client(world, READER, "admin:view-parties"))
    keys = client_token(world, WRITER, automation_client(world, WRITER, "admin:manage-keys admin:view-parties"))

    assert bearer(world, reader, "POST", "/keys/rotate", {"step": "stage"}).status_code == 403
    staged = bearer(world, keys, "POST", "/keys/rotate", {"step": "stage"})
    assert staged.status_code == 200, staged.text
    conforms(staged, "rotate-keys")
    body = staged.json()
    assert body["before"] == body["after"] and body["keys"]["phase"] == "staged" and "Restart" in body["restart_needed"]
    early = bearer(world, keys, "POST", "/keys/rotate", {"step": "switch"})
    assert early.status_code == 409 and "switch after" in early.json()["error_description"]
    shown = bearer(world, reader, "GET", "/keys")
    conforms(shown, "signing-keys")
    assert shown.json()["next_step"] == "switch" and len([k for k in shown.json()["keys"] if k["state"] == "next"]) == 2
    assert any(f"by client {WRITER}" in r for r in _audited(world, AuditKind.KEY_ROTATED))

    policy = bearer(world, reader, "GET", "/policy")
    conforms(policy, "release-policy")
    assert policy.json()["version"] == "test" and policy.json()["default_consent_exempt"] is True


def test_a_persons_rotation_needs_a_recent_sign_in(world: AdminWorld, browser: Browser) -> None:
    staff(world, browser, Role.OPERATOR)
    token = csrf_token(world, browser)
    world.federation.set_clock(FixedClock(services(world.federation).clock.now() + timedelta(minutes=6)))

    stale = api(world, browser, "POST", "/keys/rotate", {"step": "stage"}, csrf=token)

    assert (stale.status_code, stale.json()["error"]) == (403, "fresh_sign_in_required")
    assert api(world, browser, "GET", "/keys").status_code == 200
    assert not (world.federation.folder / "certs" / "next").exists()
