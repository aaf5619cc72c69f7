"""An app moving from another provider keeps its client secret when registered through the admin API (issue 19),
as ``broker client import`` keeps it: the secret is checked for strength, only its scrypt hash is written, and
it is never answered back nor audited; the app then authenticates at the token endpoint with it. No client is
given an admin permission its registrar does not hold."""

from __future__ import annotations

import json
import secrets

import requests

from broker.core.audit import AuditKind
from tests.flows.admin_api_support import AdminWorld, automation_client, bearer, client_token
from tests.flows.portal_support import services

CI = "ci-pipeline"


def _app(client_id: str, secret: object, scope: str = "admin:manage-parties") -> dict[str, object]:
    document = {"client_id": client_id, "grant_types": ["client_credentials"], "scope": scope,
                "token_endpoint_auth_method": "client_secret_basic", "client_secret": secret}
    return {"kind": "oidc", "document": json.dumps(document)}


def test_a_brought_secret_is_hashed_checked_and_never_shown(world: AdminWorld) -> None:
    token = client_token(world, CI, automation_client(world, CI, "admin:manage-parties"))
    brought = secrets.token_urlsafe(32)

    preview = bearer(world, token, "POST", "/apps/preview", _app("moved-app", brought))
    registered = bearer(world, token, "POST", "/apps", _app("moved-app", brought))

    assert preview.status_code == 200 and preview.json()["problems"] == [], preview.text
    assert registered.status_code == 200 and registered.json()["client_secret"] is None, registered.text
    written = (world.federation.folder / "metadata" / "oidc-clients" / "moved-app.json").read_text()
    assert json.loads(written)["client_secret_hash"].startswith("scrypt$") and "client_secret\"" not in written
    records = json.dumps([r.reason for r in services(world.federation).audit.events(limit=50)])
    assert all(brought not in text for text in (preview.text, registered.text, written, records))
    kept = requests.post(f"{world.url}/oidc/token", data={"grant_type": "client_credentials"},
                         auth=("moved-app", brought), timeout=10)
    assert kept.status_code == 200, kept.text  # the app goes on with the secret it had


def test_a_weak_brought_secret_is_refused_and_nothing_is_written(world: AdminWorld) -> None:
    token = client_token(world, CI, automation_client(world, CI, "admin:manage-parties"))

    preview = bearer(world, token, "POST", "/apps/preview", _app("weak-app", "password1234"))
    refused = bearer(world, token, "POST", "/apps", _app("weak-app", "password1234"))
    not_text = bearer(world, token, "POST", "/apps", _app("odd-app", 12345678901234567890))

    assert "at least 16" in " ".join(preview.json()["problems"]) and "password1234" not in preview.text
    assert refused.status_code == 409 and refused.json()["error"] == "refused"
    assert not_text.status_code == 409 and "needs the app's client_secret (text)" in not_text.text
    assert not (world.federation.folder / "metadata" / "oidc-clients" / "weak-app.json").exists()
    assert not any(r.kind == AuditKind.REGISTRATION_CHANGED.value and r.downstream == "weak-app"
                   for r in services(world.federation).audit.events(limit=50))


def test_a_client_is_given_no_admin_permission_its_registrar_does_not_hold(world: AdminWorld) -> None:
    token = client_token(world, CI, automation_client(world, CI, "admin:manage-parties"))
    wider = _app("wider-app", secrets.token_urlsafe(32), "admin:manage-parties admin:look-up-citizens")

    preview = bearer(world, token, "POST", "/apps/preview", wider)
    refused = bearer(world, token, "POST", "/apps", wider)

    assert any("admin:look-up-citizens, which you do not hold" in p for p in preview.json()["problems"])
    assert refused.status_code == 409 and "admin:look-up-citizens" in refused.json()["error_description"]
    assert not (world.federation.folder / "metadata" / "oidc-clients" / "wider-app.json").exists()
