"""Dynamic Client Registration (RFC 7591) and its management protocol (RFC 7592), over real HTTP.

A client registered here signs a citizen in end to end with the authlib relying party of ``oidc_peers``; the
rest drives the endpoints as a registering program would: the initial access token, the metadata the
dynamic policy refuses, read/update/delete with the registration access token, and what is stored.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.core.audit import AuditKind
from broker.oidc.client import hash_secret
from broker.storage import create_engine_for
from broker.storage.tables import AuditEventRow, OidcClientRow
from broker.web import oidc_registration
from tests.databases import BACKENDS, database_for
from tests.flows.federation import Federation, running_federation
from tests.flows.oidc_peers import RelyingParty, register_client
from tests.flows.oidc_registration_support import app_server, sign_in
from tests.peers.browser import Browser

INITIAL_TOKEN = "initial-" + secrets.token_urlsafe(32)
ALLOWED_HOSTS = ("127.0.0.1", "*.city.example.org")
APP_CALLBACK = "https://permits.city.example.org/oidc/callback"


@contextmanager
def dcr_federation(folder: Path, key_folder: Path, database_url: str, limits: str = "") -> Iterator[Federation]:
    """A federation whose broker offers registration: the initial access token in a file the config names."""
    token_file = folder / "registration.token"
    folder.mkdir(parents=True, exist_ok=True)
    token_file.write_text(INITIAL_TOKEN)
    hosts = ", ".join(json.dumps(host) for host in ALLOWED_HOSTS)
    config = (f'[oidc]\nregistration_token_file = "{token_file}"\nregistration_allowed_hosts = [{hosts}]\n'
              f"[limits]\n{limits}\n")
    with running_federation(folder / "instance", key_folder, database_url, extra_config=config) as running:
        yield running


@pytest.fixture(scope="module", params=BACKENDS)
def dcr(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        key_folder: Path) -> Iterator[Federation]:
    """One federation for the module (registrations do not disturb each other: every client id is new)."""
    folder = tmp_path_factory.mktemp("dcr")
    database = database_for(request.param, folder)
    try:
        with dcr_federation(folder, key_folder, next(database), 'per_ip = "100000/minute"') as running:
            yield running
    finally:
        for _ in database:
            pass


def register(fed: Federation, metadata: Any, token: str | None = INITIAL_TOKEN) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.post(f"{fed.url}/oidc/register", json=metadata, headers=headers, timeout=10)


def registered(fed: Federation, **metadata: Any) -> dict[str, Any]:
    response = register(fed, {"redirect_uris": [APP_CALLBACK], **metadata})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def manage(method: str, registration: dict[str, Any], token: str | None = None, **kwargs: Any) -> requests.Response:
    """Call the client's registration_client_uri with its registration access token (or ``token``)."""
    bearer = token if token is not None else registration["registration_access_token"]
    return requests.request(method, registration["registration_client_uri"], timeout=10,
                            headers={"Authorization": f"Bearer {bearer}"}, **kwargs)


def stored_rows(fed: Federation) -> list[OidcClientRow]:
    engine = create_engine_for(fed.database_url)
    try:
        with Session(engine) as session:
            return list(session.scalars(select(OidcClientRow)))
    finally:
        engine.dispose()


def audit_reasons(fed: Federation) -> list[str]:
    engine = create_engine_for(fed.database_url)
    try:
        with engine.connect() as connection:
            query = select(AuditEventRow.reason).where(AuditEventRow.kind == AuditKind.REGISTRATION_CHANGED.value)
            return [reason for (reason,) in connection.execute(query) if reason]
    finally:
        engine.dispose()


def refused_token(response: requests.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


# -- registering, and signing in with what was registered --------------------------------------------------------
@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post", "none"])
def test_a_registered_client_signs_a_citizen_in(dcr: Federation, auth_method: str) -> None:
    with app_server() as (server, late), Browser() as browser:
        answer = registered(dcr, redirect_uris=[f"{server.url}/callback"], token_endpoint_auth_method=auth_method,
                            client_name="Parking permits", scope="openid profile email")
        client_id = answer["client_id"]
        assert answer["registration_client_uri"] == f"{dcr.url}/oidc/register/{client_id}"
        assert answer["client_name"] == "Parking permits"
        assert answer["token_endpoint_auth_method"] == auth_method
        assert isinstance(answer["client_id_issued_at"], int) and answer["registration_access_token"]
        if auth_method == "none":
            assert "client_secret" not in answer and "client_secret_expires_at" not in answer
        else:
            assert len(answer["client_secret"]) >= 32 and answer["client_secret_expires_at"] == 0
        assert "client_secret_hash" not in answer and "may_introspect" not in answer

        rp = RelyingParty(dcr.url, server, late, client_id, answer.get("client_secret"), auth_method=auth_method,
                          scope="openid profile email")
        page = sign_in(browser, rp)

        assert page.status_code == 200, page.text
        assert rp.last.error is None
        assert rp.last.id_token_claims is not None and rp.last.id_token_claims["aud"] == client_id
        assert rp.last.userinfo is not None and rp.last.userinfo["email"] == "anna@example.org"


def test_registration_needs_the_initial_access_token(dcr: Federation) -> None:
    metadata = {"redirect_uris": [APP_CALLBACK]}
    before = len(stored_rows(dcr))
    missing = register(dcr, metadata, token=None)
    refused_token(missing)
    assert "error=" not in missing.headers["WWW-Authenticate"]  # RFC 6750 §3.1: no token, no error code

    for token in ("wrong-" + secrets.token_urlsafe(32), INITIAL_TOKEN[:-1], INITIAL_TOKEN + "x"):
        wrong = register(dcr, metadata, token=token)
        refused_token(wrong)
        assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    basic = requests.post(f"{dcr.url}/oidc/register", json=metadata, auth=("someone", INITIAL_TOKEN), timeout=10)
    refused_token(basic)
    assert len(stored_rows(dcr)) == before


def test_registration_is_off_without_an_initial_access_token(federation: Federation) -> None:
    response = register(federation, {"redirect_uris": [APP_CALLBACK]})

    assert response.status_code == 404
    assert response.json()["error"] == "invalid_request"
    discovery = requests.get(f"{federation.url}/.well-known/openid-configuration", timeout=10).json()
    assert "registration_endpoint" not in discovery
    assert stored_rows(federation) == []


def test_discovery_names_the_registration_endpoint(dcr: Federation) -> None:
    discovery = requests.get(f"{dcr.url}/.well-known/openid-configuration", timeout=10).json()
    assert discovery["registration_endpoint"] == f"{dcr.url}/oidc/register"


REFUSED_METADATA = [
    ("http off loopback", {"redirect_uris": ["http://permits.city.example.org/cb"]}, "invalid_redirect_uri"),
    ("host not allowed", {"redirect_uris": ["https://evil.example.com/cb"]}, "invalid_redirect_uri"),
    ("no redirect uris", {"client_name": "x"}, "invalid_redirect_uri"),
    ("wildcard", {"redirect_uris": ["https://*.city.example.org/cb"]}, "invalid_redirect_uri"),
    ("may_introspect", {"redirect_uris": [APP_CALLBACK], "may_introspect": True}, "invalid_client_metadata"),
    ("client_secret", {"redirect_uris": [APP_CALLBACK], "client_secret": "c" * 40}, "invalid_client_metadata"),
    ("client_secret_hash", {"redirect_uris": [APP_CALLBACK], "client_secret_hash": hash_secret("x" * 40)},
     "invalid_client_metadata"),
    ("sector_identifier_uri", {"redirect_uris": [APP_CALLBACK], "sector_identifier_uri": "https://city.example.org/s"},
     "invalid_client_metadata"),
    ("implicit flow", {"redirect_uris": [APP_CALLBACK], "response_types": ["id_token"]}, "invalid_client_metadata"),
    ("not an object", [APP_CALLBACK], "invalid_client_metadata"),
    ("null", None, "invalid_client_metadata"),
]


@pytest.mark.parametrize(("case", "metadata", "error"), REFUSED_METADATA, ids=[c[0] for c in REFUSED_METADATA])
def test_metadata_the_dynamic_policy_refuses(dcr: Federation, case: str, metadata: Any, error: str) -> None:
    before = len(stored_rows(dcr))
    response = register(dcr, metadata)

    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    assert response.json()["error_description"]
    assert len(stored_rows(dcr)) == before


REFUSED_BODIES = [
    ("malformed JSON", b'{"redirect_uris": [', "application/json"),
    ("repeated member", b'{"redirect_uris": ["https://evil.example.com/cb"], "redirect_uris": ["'
     + APP_CALLBACK.encode() + b'"]}', "application/json"),
    ("NaN", b'{"redirect_uris": ["' + APP_CALLBACK.encode() + b'"], "x": NaN}', "application/json"),
    ("not UTF-8", b'{"redirect_uris": ["' + APP_CALLBACK.encode() + b'"], "client_name": "\xff"}', "application/json"),
    ("oversized", json.dumps({"redirect_uris": [APP_CALLBACK], "pad": "x" * 70_000}).encode(), "application/json"),
    ("oversized nesting", b"[" * 100_000 + b"]" * 100_000, "application/json"),
    ("nested too deeply", b'{"a":' * 5000 + b"1" + b"}" * 5000, "application/json"),
    ("a form", b"redirect_uris=" + APP_CALLBACK.encode(), "application/x-www-form-urlencoded"),
    ("no content type", json.dumps({"redirect_uris": [APP_CALLBACK]}).encode(), ""),
]


@pytest.mark.parametrize(("case", "body", "content_type"), REFUSED_BODIES, ids=[c[0] for c in REFUSED_BODIES])
def test_bodies_that_are_not_a_metadata_object(dcr: Federation, case: str, body: bytes, content_type: str) -> None:
    response = requests.post(f"{dcr.url}/oidc/register", data=body, timeout=10,
                             headers={"Authorization": f"Bearer {INITIAL_TOKEN}", "Content-Type": content_type})

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_client_metadata"


def test_browser_apps_may_call_it(dcr: Federation) -> None:
    """CORS like the other JSON endpoints: no cookie is read here, only the bearer token the caller sends."""
    preflight = requests.options(f"{dcr.url}/oidc/register", timeout=10, headers={
        "Origin": "https://app.example.org", "Access-Control-Request-Method": "POST"})
    refused = register(dcr, {"redirect_uris": [APP_CALLBACK]}, token="wrong")

    assert preflight.status_code == 200
    for response in (preflight, refused):
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert "DELETE" in preflight.headers["Access-Control-Allow-Methods"]


# -- management: read, update, delete (RFC 7592) --------------------------------------------------------------------
def test_read_returns_the_registration_without_the_secret(dcr: Federation) -> None:
    answer = registered(dcr, client_name="Permits")

    response = manage("GET", answer)

    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    read = response.json()
    assert "client_secret" not in read  # only its hash is stored
    assert read["registration_access_token"] == answer["registration_access_token"]
    issued = {"client_secret", "client_secret_expires_at"}
    assert read == {k: v for k, v in answer.items() if k not in issued}


def test_update_replaces_the_metadata_and_keeps_the_secret(dcr: Federation) -> None:
    answer = registered(dcr, client_name="Permits")
    client_id, secret = answer["client_id"], answer["client_secret"]
    second = "https://permits.city.example.org/other/cb"  # one host: one pairwise sector (OIDC Core §8.1)
    new = {k: v for k, v in answer.items() if k not in ("client_secret", "client_secret_expires_at")}
    new.update(client_name="Parking permits", redirect_uris=[APP_CALLBACK, second])

    response = manage("PUT", answer, json=new)  # the issued members echoed back are ignored

    assert response.status_code == 200, response.text
    assert response.json()["client_name"] == "Parking permits"
    assert "client_secret" not in response.json()
    client = dcr.app.extensions["broker"].registry.oidc_client(client_id)
    assert client is not None and client.redirect_uris == (APP_CALLBACK, second)
    assert client.subject_type == "pairwise" and client.check_secret(secret)
    assert manage("GET", answer).json()["client_name"] == "Parking permits"

    # RFC 7592 §2.2: client_secret, if sent, must be the current one; then it may be in the answer again
    echoed = manage("PUT", answer, json={**new, "client_secret": secret})
    assert echoed.status_code == 200 and echoed.json()["client_secret"] == secret
    chosen = manage("PUT", answer, json={**new, "client_secret": "chosen-by-the-client-" + "x" * 32})
    assert chosen.status_code == 400 and chosen.json()["error"] == "invalid_client_metadata"
    client = dcr.app.extensions["broker"].registry.oidc_client(client_id)
    assert client is not None and client.check_secret(secret)


@pytest.mark.parametrize(("case", "change", "error"), [
    ("no client_id", {"client_id": None}, "invalid_client_metadata"),
    ("another client_id", {"client_id": "someone-else"}, "invalid_client_metadata"),
    ("may_introspect", {"may_introspect": True}, "invalid_client_metadata"),
    ("client_secret_hash", {"client_secret_hash": hash_secret("y" * 40)}, "invalid_client_metadata"),
    ("host not allowed", {"redirect_uris": ["https://evil.example.com/cb"]}, "invalid_redirect_uri"),
])
def test_update_is_checked_like_a_registration(dcr: Federation, case: str, change: dict[str, Any],
                                               error: str) -> None:
    answer = registered(dcr)
    new = {"client_id": answer["client_id"], "redirect_uris": [APP_CALLBACK], **change}
    new = {k: v for k, v in new.items() if v is not None}

    response = manage("PUT", answer, json=new)

    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    assert manage("GET", answer).json()["redirect_uris"] == [APP_CALLBACK]


def test_moving_to_a_secret_method_issues_a_secret(dcr: Federation) -> None:
    answer = registered(dcr, token_endpoint_auth_method="none")
    assert "client_secret" not in answer

    moved = manage("PUT", answer, json={"client_id": answer["client_id"], "redirect_uris": [APP_CALLBACK],
                                        "token_endpoint_auth_method": "client_secret_post"})

    assert moved.status_code == 200, moved.text
    secret = moved.json()["client_secret"]
    client = dcr.app.extensions["broker"].registry.oidc_client(answer["client_id"])
    assert client is not None and client.check_secret(secret)
    back = manage("PUT", answer, json={"client_id": answer["client_id"], "redirect_uris": [APP_CALLBACK],
                                       "token_endpoint_auth_method": "none"})
    assert back.status_code == 200 and "client_secret" not in back.json()
    client = dcr.app.extensions["broker"].registry.oidc_client(answer["client_id"])
    assert client is not None and client.client_secret_hash is None


def test_delete_ends_the_registration(dcr: Federation) -> None:
    answer = registered(dcr)
    client_id = answer["client_id"]

    response = manage("DELETE", answer)

    assert response.status_code == 204 and response.content == b""
    refused_token(manage("GET", answer))
    refused_token(manage("DELETE", answer))
    assert dcr.app.extensions["broker"].registry.oidc_client(client_id) is None
    with Browser() as browser:
        page = browser.get(f"{dcr.url}/oidc/authorize", follow=False, params={
            "client_id": client_id, "redirect_uri": APP_CALLBACK, "response_type": "code", "scope": "openid",
            "state": "s", "code_challenge": "x" * 43, "code_challenge_method": "S256"})
    assert page.status_code == 400 and "Location" not in page.headers
    assert page.headers["Content-Type"].startswith("text/html")


def test_a_deleted_client_loses_its_tokens(dcr: Federation) -> None:
    with app_server() as (server, late), Browser() as browser:
        answer = registered(dcr, redirect_uris=[f"{server.url}/callback"])
        rp = RelyingParty(dcr.url, server, late, answer["client_id"], answer["client_secret"],
                          auth_method="client_secret_basic", scope="openid email")
        sign_in(browser, rp)
        assert rp.last.token is not None
        access_token = rp.last.token["access_token"]
        userinfo = requests.get(f"{dcr.url}/oidc/userinfo", headers={"Authorization": f"Bearer {access_token}"},
                                timeout=10)
        assert userinfo.status_code == 200

        assert manage("DELETE", answer).status_code == 204

        userinfo = requests.get(f"{dcr.url}/oidc/userinfo", headers={"Authorization": f"Bearer {access_token}"},
                                timeout=10)
        assert userinfo.status_code == 401  # RFC 7592 §2.3: its grants and tokens end with it


def test_management_needs_the_clients_own_token(dcr: Federation) -> None:
    one, two = registered(dcr), registered(dcr)

    for method in ("GET", "PUT", "DELETE"):
        refused_token(manage(method, one, token=two["registration_access_token"]))
        refused_token(manage(method, one, token=INITIAL_TOKEN))
        refused_token(manage(method, one, token=one["registration_access_token"][:-1]))
        missing = requests.request(method, one["registration_client_uri"], timeout=10)
        refused_token(missing)
    assert manage("GET", one).status_code == 200


def test_unknown_and_file_clients_are_refused_like_a_wrong_token(dcr: Federation) -> None:
    """RFC 7592 §2.1: the answer does not tell whether a client exists; file clients are not managed here."""
    register_client(dcr, "file-client", [APP_CALLBACK])
    answer = registered(dcr)
    token = answer["registration_access_token"]
    expected = manage("GET", answer, token="wrong").json()

    for client_id in ("file-client", "no-such-client", "x" * 300, "%00"):
        response = requests.get(f"{dcr.url}/oidc/register/{client_id}", timeout=10,
                                headers={"Authorization": f"Bearer {token}"})
        refused_token(response)
        assert response.json() == expected
    assert requests.delete(f"{dcr.url}/oidc/register/file-client", timeout=10,
                           headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert dcr.app.extensions["broker"].registry.oidc_client("file-client") is not None


def test_a_registration_never_takes_an_existing_id(dcr: Federation, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files win in the lookup; a generated id a file already holds is refused, and nothing is stored."""
    register_client(dcr, "taken-by-a-file", [APP_CALLBACK])
    fake = types.SimpleNamespace(token_urlsafe=lambda n=32: "taken-by-a-file" if n == 24 else secrets.token_urlsafe(n))
    monkeypatch.setattr(oidc_registration, "secrets", fake)
    before = len(stored_rows(dcr))

    response = register(dcr, {"redirect_uris": [APP_CALLBACK]})

    assert response.status_code == 500 and response.json()["error"] == "server_error"
    assert len(stored_rows(dcr)) == before
    client = dcr.app.extensions["broker"].registry.oidc_client("taken-by-a-file")
    assert client is not None and client.source.startswith("metadata/")


# -- what is stored, and what is recorded --------------------------------------------------------------------------
def test_secrets_are_stored_only_hashed(dcr: Federation) -> None:
    answer = registered(dcr)
    secret, token = answer["client_secret"], answer["registration_access_token"]

    rows = [row for row in stored_rows(dcr) if row.client_id == answer["client_id"]]

    assert len(rows) == 1
    row = rows[0]
    everything = json.dumps([row.client_id, row.client_metadata, row.registration_token_hash])
    assert secret not in everything and token not in everything
    assert json.loads(row.client_metadata)["client_secret_hash"] == hash_secret(secret)
    assert row.registration_token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert INITIAL_TOKEN not in everything


def test_changes_are_audited(dcr: Federation) -> None:
    answer = registered(dcr)
    client_id = answer["client_id"]
    manage("PUT", answer, json={"client_id": client_id, "redirect_uris": [APP_CALLBACK], "client_name": "New"})
    manage("DELETE", answer)

    reasons = [r for r in audit_reasons(dcr) if client_id in r]

    assert reasons == [f"registered oidc-client {client_id} (dynamic)", f"updated oidc-client {client_id} (dynamic)",
                       f"deleted oidc-client {client_id} (dynamic)"]


def test_registration_is_rate_limited_per_address(tmp_path: Path, key_folder: Path) -> None:
    database = database_for("sqlite", tmp_path)
    with dcr_federation(tmp_path, key_folder, next(database), 'per_ip = "2/minute"') as fed:
        answers = [register(fed, {"redirect_uris": [APP_CALLBACK]}) for _ in range(3)]

        assert [a.status_code for a in answers] == [201, 201, 429]
        assert answers[2].json()["error"] == "temporarily_unavailable"
        assert int(answers[2].headers["Retry-After"]) > 0
