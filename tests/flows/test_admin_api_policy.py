"""Changing the release policy through the admin API (issue 19), over real HTTP: a CI pipeline previews a text
(the diff and what it means, nothing written), applies it, and lists the replaced version with who replaced it; a
text that would not load is 409 with its problems and the file stays; a client without ``admin:manage-parties``
is 403; a person's stale console sign-in is asked to sign in again."""

from __future__ import annotations

from datetime import timedelta

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
from tests.flows.portal_support import services
from tests.peers.browser import Browser

CURRENT = 'version = "test"\n[default]\nconsent_exempt = true\n'  # what ``running_federation`` writes
NEW = 'version = "2027-01"\n[default]\nallow = ["given_name", "family_name"]\n[apps."https://nowhere.example"]\n'


def _text(world: AdminWorld) -> str:
    return (world.federation.folder / "metadata" / "release-policy.toml").read_text()


def test_a_pipeline_previews_applies_and_lists_the_past_version(world: AdminWorld) -> None:
    token = client_token(world, "ci", automation_client(world, "ci", "admin:manage-parties admin:view-parties"))

    shown = bearer(world, token, "POST", "/policy/preview", {"document": NEW})
    assert shown.status_code == 200, shown.text
    conforms(shown, "preview-release-policy")
    changes = shown.json()["changes"]
    assert (changes["version_before"], changes["version_after"]) == ("test", "2027-01")
    default = next(c for c in changes["changes"] if c["scope"] == "default" and c["field"] == "allow")
    assert "email" in default["removed"] and default["added"] == []
    assert {n["code"] for n in changes["notes"]} >= {"version-changed", "claims-removed", "unknown-app"}
    assert _text(world) == CURRENT

    applied = bearer(world, token, "PUT", "/policy", {"document": NEW})

    assert applied.status_code == 200, applied.text
    conforms(applied, "apply-release-policy")
    assert applied.json()["changed"] is True and _text(world) == NEW
    assert services(world.federation).registry.snapshot.policy.version == "2027-01"
    versions = bearer(world, token, "GET", "/policy/versions")
    conforms(versions, "release-policy-versions")
    past = versions.json()["versions"]
    assert [(v["name"], v["version"], v["replaced_by"], v["text"]) for v in past] == [
        (applied.json()["replaced"], "test", "client ci", CURRENT)]
    again = bearer(world, token, "PUT", "/policy", {"document": NEW})
    assert again.json()["changed"] is False and len(bearer(world, token, "GET", "/policy/versions").json()[
        "versions"]) == 1


def test_a_text_that_would_not_load_is_refused_and_nothing_is_written(world: AdminWorld) -> None:
    token = client_token(world, "ci", automation_client(world, "ci", "admin:manage-parties"))

    preview = bearer(world, token, "POST", "/policy/preview", {"document": 'version = "2"\nshare = true\n'})
    refused = bearer(world, token, "PUT", "/policy", {"document": 'version = "2"\n[apps.x]\nallow = "email"\n'})
    unreadable = bearer(world, token, "PUT", "/policy", {"document": 'version = "2\n'})

    assert preview.status_code == 200 and preview.json()["changes"] is None
    assert any("unknown settings" in p for p in preview.json()["problems"])
    assert (refused.status_code, refused.json()["error"]) == (409, "refused")
    assert "allow must be a list" in refused.json()["error_description"]
    assert unreadable.status_code == 409 and "not readable TOML" in unreadable.json()["error_description"]
    assert _text(world) == CURRENT


def test_a_client_without_manage_parties_may_only_look(world: AdminWorld) -> None:
    token = client_token(world, "viewer", automation_client(world, "viewer", "admin:view-parties"))

    assert bearer(world, token, "GET", "/policy/versions").status_code == 200
    assert bearer(world, token, "PUT", "/policy", {"document": NEW}).status_code == 403
    assert bearer(world, token, "POST", "/policy/preview", {"document": NEW}).status_code == 403
    assert _text(world) == CURRENT


def test_a_person_applies_only_with_a_recent_sign_in(world: AdminWorld, browser: Browser) -> None:
    staff(world, browser, Role.OPERATOR)
    token = csrf_token(world, browser)
    world.federation.set_clock(FixedClock(services(world.federation).clock.now() + timedelta(minutes=6)))

    stale = api(world, browser, "PUT", "/policy", {"document": NEW}, csrf=token)

    assert (stale.status_code, stale.json()["error"]) == (403, "fresh_sign_in_required")
    assert api(world, browser, "POST", "/policy/preview", {"document": NEW}, csrf=token).status_code == 200
    assert _text(world) == CURRENT
