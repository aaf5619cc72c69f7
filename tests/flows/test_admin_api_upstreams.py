"""Upstream identity providers and SAML app settings through the admin API (issue 19), over real HTTP: a CI
pipeline with ``admin:manage-parties`` previews an upstream's registration JSON (the diff, nothing written),
registers an OpenID Connect and a SAML upstream, which the registry then serves and ``GET /apps`` lists, and
removes one; documents the broker would not use are refused and write nothing. A SAML app's settings change as
``broker sp set`` changes them (``clear``, then ``settings``), bad values are refused and change nothing; a
person needs a recent sign-in to apply them, and support and auditors are refused every write."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

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
from tests.flows.portal_support import services
from tests.peers.browser import Browser

CI = "ci-pipeline"
SECRET = "a-secret-that-must-never-show-up-anywhere"
CITY_IDP = {"name": "city-idp", "protocol": "oidc", "issuer": "https://idp.city.example", "client_id": "broker",
            "client_secret_file": "city-idp.secret", "display_name": "City staff"}
STATE_IDP = {"name": "state-idp", "protocol": "saml", "entity_id": "https://idp.state.example/idp"}
SP1 = "http://127.0.0.1:9/sp1"


@pytest.fixture
def world(world: AdminWorld) -> AdminWorld:
    """The admin world (``tests/flows/conftest.py``) with the secret file the upstream documents name."""
    (world.federation.folder / "city-idp.secret").write_text(SECRET)
    return world


def _ci(world: AdminWorld) -> str:
    return client_token(world, CI, automation_client(world, CI, "admin:view-parties admin:manage-parties"))


def _upstream(document: dict[str, Any]) -> dict[str, str]:
    return {"kind": "upstream", "document": json.dumps(document)}


def _files(world: AdminWorld) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((world.federation.folder / "metadata" / "upstreams").glob("*"))}


def test_a_ci_pipeline_registers_an_oidc_and_a_saml_upstream_and_removes_one(world: AdminWorld) -> None:
    token, registry = _ci(world), services(world.federation).registry
    before = _files(world)

    preview = bearer(world, token, "POST", "/apps/preview", _upstream(CITY_IDP))
    conforms(preview, "preview-app")
    assert preview.json()["problems"] == [] and preview.json()["party_ids"] == ["city-idp"]
    assert {"field": "issuer", "before": None, "after": "https://idp.city.example"}.items() <= next(
        c for c in preview.json()["changes"] if c["field"] == "issuer").items()
    assert _files(world) == before and "city-idp" not in registry.snapshot.upstreams

    registered = [bearer(world, token, "POST", "/apps", _upstream(doc)) for doc in (CITY_IDP, STATE_IDP)]
    listed = bearer(world, token, "GET", "/apps")

    for answer in registered:
        assert answer.status_code == 200, answer.text
        conforms(answer, "register-app")
    assert registry.snapshot.upstream_parties["city-idp"].display_name == "City staff"
    assert registry.snapshot.upstreams["state-idp"].protocol == "saml"
    conforms(listed, "list-apps")
    upstreams = {a["party_id"]: a for a in listed.json()["apps"] if a["kind"] == "upstream"}
    assert set(upstreams) == {"op", "other", "city-idp", "state-idp"}
    assert upstreams["city-idp"]["display_name"] == "City staff"
    assert SECRET not in "".join(_files(world).values())
    reasons = [r.reason or "" for r in services(world.federation).audit.events(limit=80)
               if r.kind == AuditKind.REGISTRATION_CHANGED.value and r.downstream == "state-idp"]
    assert any(f"added upstream app by client {CI}" in reason for reason in reasons)

    switched = bearer(world, token, "POST", "/apps/disable", {"kind": "upstream", "party_id": "state-idp"})
    removed = bearer(world, token, "POST", "/apps/remove", {"kind": "upstream", "party_id": "state-idp"})

    assert switched.status_code == 409 and "remove" in switched.json()["error_description"]
    assert removed.status_code == 200 and "state-idp" not in registry.snapshot.upstreams
    assert "state-idp.json" not in _files(world)


@pytest.mark.parametrize(("document", "problem"), [
    ({k: v for k, v in CITY_IDP.items() if k != "issuer"}, "issuer is required"),
    ({**CITY_IDP, "client_secret": SECRET}, "client_secret"),
    ({**STATE_IDP, "client_secret": SECRET}, "client_secret"),
    ({**{k: v for k, v in CITY_IDP.items() if k != "issuer"}, "preset": "no-such-provider"}, "unknown preset"),
])
def test_an_upstream_document_the_broker_would_not_use_is_refused_and_writes_nothing(
        world: AdminWorld, document: dict[str, Any], problem: str) -> None:
    token = _ci(world)
    before = _files(world)

    preview = bearer(world, token, "POST", "/apps/preview", _upstream(document))
    refused = bearer(world, token, "POST", "/apps", _upstream(document))

    assert preview.status_code == 200 and any(problem in p for p in preview.json()["problems"]), preview.text
    assert (refused.status_code, refused.json()["error"]) == (409, "refused")
    assert SECRET not in preview.text + refused.text
    assert _files(world) == before
    assert set(services(world.federation).registry.snapshot.upstreams) == {"op", "other"}


def _settings(**body: Any) -> dict[str, Any]:
    return {"kind": "saml", "party_id": SP1, **body}


def test_a_saml_apps_settings_change_what_it_is_served_with(world: AdminWorld) -> None:
    token, registry = _ci(world), services(world.federation).registry
    settings_file = world.federation.folder / "metadata" / "saml-sp" / "sp1.toml"
    settings_file.write_text('display_name = "Library"\nrequired_acr = "loa2"\n')
    registry.reload()
    change = _settings(settings={"display_name": "Library loans", "receive": ["email"]}, clear=["required_acr"])

    preview = bearer(world, token, "POST", "/apps/settings/preview", change)
    assert registry.snapshot.saml.sps[SP1].display_name == "Library"
    applied = bearer(world, token, "POST", "/apps/settings", change)

    conforms(preview, "preview-app-settings")
    assert preview.json()["problems"] == []
    assert {"party": SP1, "field": "settings.display_name", "before": "Library",
            "after": "Library loans"} in preview.json()["changes"]
    assert applied.status_code == 200, applied.text
    conforms(applied, "set-app-settings")
    served = registry.snapshot.saml.sps[SP1]
    assert (served.display_name, served.required_acr) == ("Library loans", None)
    assert served.requested_claims == frozenset({"email"})
    reasons = [r.reason or "" for r in services(world.federation).audit.events(limit=80)
               if r.kind == AuditKind.REGISTRATION_CHANGED.value and r.downstream == SP1]
    assert any(f"settings of saml app changed by client {CI}" in r and "Library -> Library loans" in r
               for r in reasons), reasons


@pytest.mark.parametrize("body", [
    _settings(settings={"allowed_upstreams": ["op"], "default_upstream": "other"}),
    _settings(settings={"logo_uri": "http://library.example/logo.png"}),
    _settings(settings={"disabled": True}),
    _settings(clear=["no_such_setting"]),
    {"kind": "oidc", "party_id": SP1, "settings": {"display_name": "Library loans"}},
])
def test_bad_settings_are_refused_and_change_nothing(world: AdminWorld, body: dict[str, Any]) -> None:
    token, registry = _ci(world), services(world.federation).registry
    settings_file = world.federation.folder / "metadata" / "saml-sp" / "sp1.toml"
    settings_file.write_text('display_name = "Library"\n')
    registry.reload()

    preview = bearer(world, token, "POST", "/apps/settings/preview", body)
    refused = bearer(world, token, "POST", "/apps/settings", body)

    assert preview.status_code == 200 and preview.json()["problems"], preview.text
    assert (refused.status_code, refused.json()["error"]) == (409, "refused")
    assert settings_file.read_text() == 'display_name = "Library"\n'
    assert registry.snapshot.saml.sps[SP1].display_name == "Library"


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.AUDITOR])
def test_support_and_auditors_are_refused_every_write(world: AdminWorld, browser: Browser, role: Role) -> None:
    staff(world, browser, role)
    token = csrf_token(world, browser)

    answers = [api(world, browser, "POST", path, body, csrf=token) for path, body in (
        ("/apps/preview", _upstream(CITY_IDP)), ("/apps", _upstream(CITY_IDP)),
        ("/apps/remove", {"kind": "upstream", "party_id": "other"}),
        ("/apps/settings/preview", _settings(settings={"display_name": "Taken"})),
        ("/apps/settings", _settings(settings={"display_name": "Taken"})))]

    assert [(a.status_code, a.json()["error"]) for a in answers] == [(403, "forbidden")] * 5
    snapshot = services(world.federation).registry.snapshot
    assert set(snapshot.upstreams) == {"op", "other"} and snapshot.saml.sps[SP1].display_name != "Taken"


def test_a_person_needs_a_recent_sign_in_to_change_settings_or_upstreams(world: AdminWorld,
                                                                         browser: Browser) -> None:
    staff(world, browser, Role.OPERATOR)
    token = csrf_token(world, browser)
    fresh = api(world, browser, "POST", "/apps/settings/preview", _settings(settings={"display_name": "Later"}),
                csrf=token)
    assert fresh.status_code == 200 and fresh.json()["problems"] == [], fresh.text
    world.federation.set_clock(FixedClock(services(world.federation).clock.now() + timedelta(minutes=6)))

    stale = [api(world, browser, "POST", path, body, csrf=token)
             for path, body in (("/apps/settings", _settings(settings={"display_name": "Later"})),
                                ("/apps", _upstream(CITY_IDP)))]

    assert [(a.status_code, a.json()["error"]) for a in stale] == [(403, "fresh_sign_in_required")] * 2
    snapshot = services(world.federation).registry.snapshot
    assert snapshot.saml.sps[SP1].display_name != "Later" and "city-idp" not in snapshot.upstreams
