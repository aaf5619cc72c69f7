"""The Shared Signals transmitter against a running broker, over real HTTP (issue 18): the metadata, stream
management authenticated as registered clients (each sees only its own streams), the verification event and
security events pushed by the delivery worker to a receiver on 127.0.0.1 that checks each SET as an SSF receiver
would, with the sub of the app's own ID token."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from broker.core.outbox import MessageState
from broker.core.security_events import SecurityEvent
from broker.storage import create_engine_for
from broker.storage.delivery_tables import OutboxMessageRow
from tests.databases import BACKENDS
from tests.flows.federation import Federation
from tests.flows.oidc_peers import relying_party
from tests.flows.oidc_registration_support import sign_in
from tests.flows.ssf_receiver_support import SsfReceiver, validate_set
from tests.flows.ssf_support import (
    PURGED,
    PUSH,
    REVOKED,
    VERIFICATION,
    account_of,
    call,
    client,
    deliver,
    new_stream,
    published,
    services,
    ssf_federation,
    transmitter,
)
from tests.peers.browser import Browser


@pytest.fixture(scope="module", params=BACKENDS)
def fed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        key_folder: Path) -> Iterator[Federation]:
    with ssf_federation(request.param, tmp_path_factory.mktemp("ssf"), key_folder) as running:
        yield running


def test_the_transmitter_metadata(fed: Federation) -> None:
    metadata, jwks = published(fed)
    discovery = requests.get(f"{fed.url}/.well-known/openid-configuration", timeout=10).json()
    assert metadata["issuer"] == discovery["issuer"] and metadata["jwks_uri"] == discovery["jwks_uri"]
    assert metadata["delivery_methods_supported"] == [PUSH]
    assert metadata["configuration_endpoint"] == f"{fed.url}/ssf/streams"
    assert metadata["status_endpoint"] == f"{fed.url}/ssf/status"
    assert metadata["verification_endpoint"] == f"{fed.url}/ssf/verify"
    assert metadata["spec_version"] == "1_0" and metadata["default_subjects"] == "ALL"
    assert metadata["authorization_schemes"] == [{"spec_urn": "urn:ietf:rfc:7617"}]
    assert jwks["keys"]


def test_stream_management_is_for_the_owning_client_only(fed: Federation) -> None:
    owner, other = client(fed, "ssf-owner"), client(fed, "ssf-other")
    url = "https://ssf-owner.city.example.org/events"
    created = new_stream(fed, owner, url, [REVOKED, "urn:example:not-supported"])
    stream_id = created["stream_id"]
    assert created["aud"] == "ssf-owner" and created["iss"] == published(fed)[0]["issuer"]
    assert created["delivery"] == {"method": PUSH, "endpoint_url": url}
    assert created["events_delivered"] == [REVOKED]
    assert set(created["events_supported"]) == {event.value for event in SecurityEvent}

    read = call(fed, "GET", "/ssf/streams", owner, params={"stream_id": stream_id})
    assert read.status_code == 200 and read.json() == created
    assert read.headers["Cache-Control"] == "no-store"
    assert [s["stream_id"] for s in call(fed, "GET", "/ssf/streams", owner).json()] == [stream_id]
    # another client: not found, whatever it tries; its own list is empty
    for method, params, body in (("GET", {"stream_id": stream_id}, None), ("DELETE", {"stream_id": stream_id}, None),
                                 ("PATCH", None, {"stream_id": stream_id, "events_requested": [PURGED]}),
                                 ("PUT", None, {"stream_id": stream_id, "delivery": {"method": PUSH,
                                                                                     "endpoint_url": url}})):
        assert call(fed, method, "/ssf/streams", other, json=body, params=params).status_code == 404
    assert call(fed, "GET", "/ssf/status", other, params={"stream_id": stream_id}).status_code == 404
    assert call(fed, "POST", "/ssf/verify", other, json={"stream_id": stream_id}).status_code == 404
    assert call(fed, "GET", "/ssf/streams", other).json() == []
    # no credentials, a wrong secret, an unknown client: 401 with a Basic challenge
    for auth in (None, (owner[0], "wrong"), ("nobody", "x")):
        refused = call(fed, "GET", "/ssf/streams", auth, params={"stream_id": stream_id})
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
        assert refused.headers["WWW-Authenticate"].startswith("Basic")

    patched = call(fed, "PATCH", "/ssf/streams", owner, json={"stream_id": stream_id, "events_requested": [PURGED]})
    assert patched.status_code == 200 and patched.json()["events_delivered"] == [PURGED]
    assert patched.json()["delivery"]["endpoint_url"] == url  # kept
    replaced = call(fed, "PUT", "/ssf/streams", owner, json={
        "stream_id": stream_id, "delivery": {"method": PUSH, "endpoint_url": url + "/v2"}})
    assert replaced.status_code == 200 and replaced.json()["events_delivered"] == []
    assert call(fed, "GET", "/ssf/status", owner, params={"stream_id": stream_id}).json() == {
        "stream_id": stream_id, "status": "enabled"}
    paused = call(fed, "POST", "/ssf/status", owner, json={"stream_id": stream_id, "status": "paused",
                                                          "reason": "maintenance"})
    assert paused.json() == {"stream_id": stream_id, "status": "paused", "reason": "maintenance"}
    assert call(fed, "DELETE", "/ssf/streams", owner, params={"stream_id": stream_id}).status_code == 204
    assert call(fed, "GET", "/ssf/streams", owner, params={"stream_id": stream_id}).status_code == 404


@pytest.mark.parametrize("delivery", [
    {"method": PUSH, "endpoint_url": "http://receiver.city.example.org/events"},  # http off loopback
    {"method": PUSH, "endpoint_url": "https://receiver.city.example.org/events#x"},  # fragment
    {"method": "urn:ietf:rfc:8936", "endpoint_url": "https://receiver.city.example.org/events"},  # poll
    {"method": PUSH, "endpoint_url": "https://r.example.org/", "authorization_header": "Bearer a\r\nX-Evil: 1"},
    {"method": PUSH},
])
def test_bad_delivery_is_refused(fed: Federation, delivery: dict[str, str]) -> None:
    owner = client(fed, "ssf-bad-delivery")
    response = call(fed, "POST", "/ssf/streams", owner, json={"delivery": delivery, "events_requested": [REVOKED]})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert call(fed, "GET", "/ssf/streams", owner).json() == []


def test_the_verification_event_reaches_the_receiver(fed: Federation) -> None:
    owner = client(fed, "ssf-verify")
    with SsfReceiver().start() as receiver:
        stream_id = new_stream(fed, owner, receiver.url, [REVOKED])["stream_id"]
        assert call(fed, "POST", "/ssf/verify", owner, json={"stream_id": stream_id, "state": "st-1"}
                    ).status_code == 204
        too_soon = call(fed, "POST", "/ssf/verify", owner, json={"stream_id": stream_id, "state": "st-2"})
        assert too_soon.status_code == 429
        deliver(fed)
        assert len(receiver.pushed) == 1
    pushed = receiver.pushed[0]
    assert pushed.content_type == "application/secevent+jwt"  # RFC 8935 §2
    metadata, jwks = published(fed)
    claims = validate_set(pushed.body, jwks, metadata["issuer"], "ssf-verify")
    assert claims["events"] == {VERIFICATION: {"state": "st-1"}}
    assert claims["sub_id"] == {"format": "opaque", "id": stream_id}


def test_events_go_to_the_streams_of_the_apps_that_know_the_account(fed: Federation) -> None:
    stranger = client(fed, "ssf-stranger")
    with relying_party(fed, "ssf-app") as rp, Browser() as browser, SsfReceiver().start() as receiver:
        page = sign_in(browser, rp)
        assert page.status_code == 200, page.text
        assert rp.last.id_token_claims is not None
        sid, sub = rp.last.id_token_claims["sid"], rp.last.id_token_claims["sub"]
        assert rp.secret is not None
        app = ("ssf-app", rp.secret)
        app_stream = new_stream(fed, app, receiver.url, [REVOKED])["stream_id"]
        stranger_stream = new_stream(fed, stranger, receiver.url, [REVOKED, PURGED])["stream_id"]
        account_id = account_of(fed, sid)
        ssf, now = transmitter(fed), datetime.now(UTC)

        assert ssf.emit(SecurityEvent.ACCOUNT_PURGED, account_id, now) == 0  # the app did not ask for it
        assert ssf.emit(SecurityEvent.SESSION_REVOKED, account_id, now, {"initiating_entity": "user"}) == 1
        call(fed, "POST", "/ssf/status", app, json={"stream_id": app_stream, "status": "paused"})
        assert ssf.emit(SecurityEvent.SESSION_REVOKED, account_id, now) == 1  # held (SSF 1.0 §8.1.2)
        call(fed, "POST", "/ssf/status", app, json={"stream_id": app_stream, "status": "disabled"})  # dropped
        assert ssf.emit(SecurityEvent.SESSION_REVOKED, account_id, now) == 0
        queued = [m for m in services(fed).outbox.listing(MessageState.PENDING, 100)  # type: ignore[union-attr]
                  if m.message.receiver in (app_stream, stranger_stream)]
        assert [m.message.receiver for m in queued] == [app_stream]
        deliver(fed)
        assert len(receiver.pushed) == 1
    metadata, jwks = published(fed)
    claims = validate_set(receiver.pushed[0].body, jwks, metadata["issuer"], "ssf-app")
    assert claims["sub_id"] == {"format": "iss_sub", "iss": metadata["issuer"], "sub": sub}, "the ID token's sub"
    assert claims["events"] == {REVOKED: {"initiating_entity": "user", "event_timestamp": int(now.timestamp())}}
    assert claims["jti"] == queued[0].message.jti


def test_the_streams_authorization_header_goes_with_each_push_and_is_sealed_in_the_outbox(fed: Federation) -> None:
    """RFC 8935 §2: the receiver's ``authorization_header`` is the push's ``Authorization``; at rest in the
    queued message it is sealed (never the value in the row)."""
    owner = client(fed, "ssf-auth")
    secret = "Bearer " + "r" * 40
    with SsfReceiver().start() as receiver:
        response = call(fed, "POST", "/ssf/streams", owner, json={
            "delivery": {"method": PUSH, "endpoint_url": receiver.url, "authorization_header": secret},
            "events_requested": [REVOKED]})
        assert response.status_code == 201, response.text
        assert secret not in response.text
        stream_id = response.json()["stream_id"]
        assert call(fed, "POST", "/ssf/verify", owner, json={"stream_id": stream_id}).status_code == 204
        engine = create_engine_for(fed.database_url)
        try:
            with engine.connect() as connection:
                stored = connection.scalars(select(OutboxMessageRow.authorization_sealed)
                                            .where(OutboxMessageRow.receiver == stream_id)).all()
        finally:
            engine.dispose()
        assert stored and all(value and secret not in value for value in stored)
        deliver(fed)
    [pushed] = receiver.pushed
    assert pushed.authorization == secret


def test_deleting_the_account_pushes_account_purged_to_the_apps_that_subscribed(fed: Federation) -> None:
    """Issue 18, "Done when": the citizen deletes the account in the portal; the app that signed them in and
    subscribed gets RISC ``account-purged`` (and CAEP ``session-revoked``) for its own ``sub``."""
    with relying_party(fed, "ssf-purge") as rp, Browser() as browser, SsfReceiver().start() as receiver:
        assert sign_in(browser, rp).status_code == 200
        assert rp.last.id_token_claims is not None and rp.secret is not None
        sub = rp.last.id_token_claims["sub"]
        new_stream(fed, ("ssf-purge", rp.secret), receiver.url, [PURGED, REVOKED])

        confirm = browser.get(f"{fed.url}/account/delete")
        assert confirm.status_code == 200
        assert browser.submit(confirm).status_code == 200  # "Your account was deleted"
        deliver(fed)
    metadata, jwks = published(fed)
    events = {}
    for pushed in receiver.pushed:
        claims = validate_set(pushed.body, jwks, metadata["issuer"], "ssf-purge")
        assert claims["sub_id"] == {"format": "iss_sub", "iss": metadata["issuer"], "sub": sub}
        events.update(claims["events"])
    assert set(events) == {PURGED, REVOKED}
