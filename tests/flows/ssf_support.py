"""The Shared Signals flow tests' running broker and their calls to it (issue 18): a federation with generous rate
limits, stream management over real HTTP as a registered client, the delivery worker's passes, and the outbox's
view of one stream."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import select

from broker.core.outbox import MessageState, Outbox, QueuedMessage
from broker.core.security_events import SecurityEvent
from broker.delivery.worker import deliver_due
from broker.downstream.ssf import SsfTransmitter
from broker.storage import create_engine_for
from broker.storage.tables import SsoSessionRow
from broker.web.services import Services
from tests.databases import database_for
from tests.flows.federation import Federation, running_federation
from tests.flows.oidc_peers import register_client
from tests.flows.ssf_receiver_support import loopback_post

PUSH = "urn:ietf:rfc:8935"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"
REVOKED = SecurityEvent.SESSION_REVOKED.value
PURGED = SecurityEvent.ACCOUNT_PURGED.value
LIMITS = '[limits]\nper_ip = "100000/minute"\nper_ip_api = "100000/minute"\nper_client = "100000/minute"\n'


@contextmanager
def ssf_federation(backend: str, folder: Path, key_folder: Path) -> Iterator[Federation]:
    """A running broker on ``backend`` whose rate limits no test reaches."""
    database = database_for(backend, folder)
    try:
        with running_federation(folder / "instance", key_folder, next(database), extra_config=LIMITS) as running:
            yield running
    finally:
        for _ in database:
            pass


def services(fed: Federation) -> Services:
    svc: Services = fed.app.extensions["broker"]
    return svc


def transmitter(fed: Federation) -> SsfTransmitter:
    ssf = services(fed).ssf
    assert ssf is not None
    return ssf


def outbox(fed: Federation) -> Outbox:
    queue = services(fed).outbox
    assert queue is not None
    return queue


def client(fed: Federation, client_id: str) -> tuple[str, str]:
    secret = register_client(fed, client_id, [f"https://{client_id}.city.example.org/cb"])
    assert secret is not None
    return client_id, secret


def call(fed: Federation, method: str, path: str, auth: tuple[str, str] | None, *, json: Any = None,
         params: dict[str, str] | None = None) -> requests.Response:
    return requests.request(method, f"{fed.url}{path}", auth=auth, json=json, params=params, timeout=10)


def new_stream(fed: Federation, auth: tuple[str, str], url: str, events: list[str]) -> dict[str, Any]:
    response = call(fed, "POST", "/ssf/streams", auth,
                    json={"delivery": {"method": PUSH, "endpoint_url": url}, "events_requested": events})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def set_status(fed: Federation, auth: tuple[str, str], stream_id: str, status: str) -> None:
    """SSF 1.0 §8.1.2.2, as the receiver asks it."""
    response = call(fed, "POST", "/ssf/status", auth, json={"stream_id": stream_id, "status": status})
    assert response.status_code == 200 and response.json()["status"] == status, response.text


def deliver(fed: Federation) -> None:
    """Passes of the worker until one claims nothing (what fails waits for its retry time: not claimed again)."""
    for _ in range(50):
        if not deliver_due(outbox(fed), loopback_post(), datetime.now(UTC)).claimed:
            return
    raise AssertionError("the worker kept finding messages")


def queued_for(fed: Federation, stream_id: str, state: MessageState) -> list[QueuedMessage]:
    """The stream's messages in ``state``, oldest first."""
    return [m for m in reversed(outbox(fed).listing(state, 10_000)) if m.message.receiver == stream_id]


def published(fed: Federation) -> tuple[dict[str, Any], dict[str, Any]]:
    metadata = requests.get(f"{fed.url}/.well-known/ssf-configuration", timeout=10).json()
    return metadata, requests.get(metadata["jwks_uri"], timeout=10).json()


def account_of(fed: Federation, sid: str) -> str:
    engine = create_engine_for(fed.database_url)
    try:
        with engine.connect() as connection:
            return str(connection.execute(select(SsoSessionRow.account_id).where(SsoSessionRow.sid == sid))
                       .scalar_one())
    finally:
        engine.dispose()
