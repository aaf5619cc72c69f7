"""The broker's Shared Signals transmitter (SSF 1.0; issue 18): stream management for the receivers (each a
registered OpenID client, seeing only its own streams) and ``emit``, the ``core.security_events.SecurityEvents``
the journeys call.

``emit`` finds the apps that know the account (``apps_of``: the apps the citizen used, as the portal lists them),
their streams that deliver the event, and queues one signed SET per stream in the outbox (``core.outbox``), as an
RFC 8935 push: POST of the bare token as ``application/secevent+jwt`` to the stream's ``endpoint_url``. The
delivery worker sends it; nothing is sent from the caller's request.

Stream status (SSF 1.0 §8.1.2): an enabled stream's SETs are due at once. A paused stream's are queued *held* (the
transmitter holds the events and delivers them once the stream is enabled): the worker never claims them, and
``set_status`` to enabled releases them, due at once and claimed in the order they were queued (a push that fails
and is retried may still arrive after a later one, as on an enabled stream). A disabled stream gets no event (the
transmitter drops them and never delivers them): disabling a paused stream, or deleting it, drops what it held. The
verification event is for enabled streams only (§8.1.4.2). A held SET keeps the ``endpoint_url`` and
``authorization_header`` the stream had when the event was queued.

The bound: a paused stream holds at most ``MAX_HELD_PER_STREAM`` events. Beyond it a new event for that stream is
not held, the older ones are kept (the receiver gets the first events of the pause, not the last); each one not
held is logged (a warning with the stream id) and counted in ``not_held`` (per stream id, per process). The count
and the insert are not one transaction: emits racing on one stream may hold a few more than the bound, never many.
An event held just as its stream is enabled, disabled or deleted is settled after it is queued (``_settle``), so
none is left held behind a stream that is no longer paused.

The stream's ``authorization_header`` goes with each SET (``OutgoingMessage.authorization``, sealed in the
outbox) and the worker sends it as the ``Authorization`` header (RFC 8935 §2).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from broker.core.outbox import Outbox, OutgoingMessage
from broker.core.security_events import SecurityEvent, SecurityEvents
from broker.core.ssf_streams import SsfStream, SsfStreamStore, StreamStatus
from broker.downstream.oidc.errors import OAuthError
from broker.downstream.ssf import tokens
from broker.downstream.ssf.api import ApiAnswer, handle
from broker.downstream.ssf.config import (
    MIN_VERIFICATION_INTERVAL,
    TransmitterSettings,
    invalid,
    stream_request,
    transmitter_metadata,
)
from broker.downstream.ssf.receiver_auth import basic_credentials
from broker.keys.keyring import KeyRing
from broker.oidc.client import OidcClient
from broker.oidc.client_metadata import RegistrationPolicy

log = logging.getLogger(__name__)
#: streams one client may have (SSF 1.0 §8.1.1.1: more is 409 Conflict)
MAX_STREAMS_PER_CLIENT = 3
#: events one paused stream holds, at most (SSF 1.0 §8.1.2; beyond it new ones are not held: module docstring)
MAX_HELD_PER_STREAM = 1000


def not_found() -> OAuthError:
    """SSF 1.0 §8.1.1.2: 404 for a stream that does not exist *for this receiver*: another client's stream is not
    found either, so a client cannot learn which streams exist."""
    return OAuthError("not_found", "there is no such stream for this client", 404)


def new_stream_id() -> str:
    return secrets.token_urlsafe(24)


class SsfTransmitter:
    """The transmitter over ``streams`` and ``outbox``.

    ``keys``: the broker's key ring (the SETs are signed like ID tokens); ``clients`` finds a registered client
    (``FileRegistry.oidc_client``); ``subject_of(client, account_id)`` is the ``sub`` of the client's ID tokens
    (``OidcProvider.subject``); ``apps_of(account_id)``: the party ids of the apps the account used;
    ``policy``: the dynamic registration policy (the hosts a dynamically registered client's URLs may use)."""

    def __init__(self, settings: TransmitterSettings, keys: KeyRing, streams: SsfStreamStore, outbox: Outbox,
                 clients: Callable[[str], OidcClient | None], subject_of: Callable[[OidcClient, str], str],
                 apps_of: Callable[[str], Collection[str]], policy: RegistrationPolicy,
                 new_id: Callable[[], str] = tokens.new_jti) -> None:
        self.settings, self._keys, self.streams, self._outbox = settings, keys, streams, outbox
        self.clients, self._subject_of, self._apps_of = clients, subject_of, apps_of
        self._policy, self._new_id = policy, new_id
        #: events not held because their paused stream held ``MAX_HELD_PER_STREAM`` already, by stream id
        self.not_held: Counter[str] = Counter()
        self._lock = threading.Lock()

    def metadata(self) -> dict[str, Any]:
        """SSF 1.0 §7.1: ``/.well-known/ssf-configuration``."""
        return transmitter_metadata(self.settings)

    def api(self, endpoint: str, method: str, authorization: str | None, query: Mapping[str, str],
            mimetype: str, body: bytes, now: datetime) -> ApiAnswer:
        """One call of the stream management API (``broker.downstream.ssf.api``)."""
        return handle(self, endpoint, method, authorization, query, mimetype, body, now)

    def claimed_client(self, authorization: str | None) -> str | None:
        """The registered client a call claims to be (its Basic user name), unauthenticated, or None: for the
        per-client rate limits, which count before the secret is checked."""
        credentials = basic_credentials(authorization)
        claimed = credentials[0] if credentials is not None else None
        if not claimed or len(claimed) > 255 or self.clients(claimed) is None:
            return None
        return claimed

    # -- stream management (SSF 1.0 §8.1.1) ------------------------------------------------------------
    def own(self, client: OidcClient, stream_id: str) -> SsfStream:
        stream = self.streams.get(stream_id)
        if stream is None or stream.client_id != client.client_id:
            raise not_found()
        return stream

    def create(self, client: OidcClient, body: Mapping[str, Any], now: datetime) -> SsfStream:
        asked = stream_request(body, client, self._policy)
        stream = SsfStream(new_stream_id(), client.client_id, asked.events_requested, asked.events_delivered,
                           asked.endpoint_url, StreamStatus.ENABLED, now, now, asked.authorization_header,
                           asked.description)
        if not self.streams.add(stream, MAX_STREAMS_PER_CLIENT):
            raise OAuthError("conflict", f"a client may have at most {MAX_STREAMS_PER_CLIENT} streams", 409)
        return stream

    def update(self, client: OidcClient, body: Mapping[str, Any], now: datetime, *, partial: bool) -> SsfStream:
        """PATCH (``partial``: absent members are kept) or PUT (the body is the whole configuration)."""
        current = self.own(client, _stream_id(body))
        asked = stream_request(body, client, self._policy, current if partial else None)
        stream = replace(current, events_requested=asked.events_requested, events_delivered=asked.events_delivered,
                         endpoint_url=asked.endpoint_url, authorization_header=asked.authorization_header,
                         description=asked.description, updated_at=now)
        if not self.streams.replace(stream):
            raise not_found()
        return stream

    def delete(self, client: OidcClient, stream_id: str) -> None:
        """SSF 1.0 §8.1.1.5; the events the stream held are dropped."""
        if not self.streams.remove(stream_id, client.client_id):
            raise not_found()
        self._drop_held(stream_id)

    def set_status(self, client: OidcClient, stream_id: str, status: StreamStatus, reason: str | None,
                   now: datetime) -> SsfStream:
        """SSF 1.0 §8.1.2.2. Enabled: the events held while the stream was paused are due now (§8.1.2: delivered
        once the stream is enabled); disabled: they are dropped, never delivered."""
        stream = replace(self.own(client, stream_id), status=status, status_reason=reason, updated_at=now)
        if not self.streams.replace(stream):
            raise not_found()
        if status is StreamStatus.ENABLED:
            self._release_held(stream_id, now)
        elif status is StreamStatus.DISABLED:
            self._drop_held(stream_id)
        return stream

    def _release_held(self, stream_id: str, now: datetime) -> None:
        released = self._outbox.release_held(stream_id, now)
        if released:
            log.info("ssf stream %s enabled: %d held events released", stream_id, released)

    def _drop_held(self, stream_id: str) -> None:
        dropped = self._outbox.drop_held(stream_id)
        if dropped:
            log.info("ssf stream %s disabled or deleted: %d held events dropped", stream_id, dropped)

    def verify(self, client: OidcClient, stream_id: str, state: str | None, now: datetime) -> bool:
        """SSF 1.0 §8.1.4.2: queue a verification event carrying ``state``. Only an enabled stream gets one (a paused
        or disabled one gets no event at all: 409); at most one per ``MIN_VERIFICATION_INTERVAL`` (429)."""
        stream = self.own(client, stream_id)
        if stream.status is not StreamStatus.ENABLED:
            raise OAuthError("conflict", f"the stream is {stream.status.value}: it receives no events", 409)
        if not self.streams.verification_due(stream_id, now, now - timedelta(seconds=MIN_VERIFICATION_INTERVAL)):
            raise OAuthError("slow_down", f"at most one verification per {MIN_VERIFICATION_INTERVAL} s", 429)
        payload = {"state": state} if state is not None else {}
        return self._queue(stream, client, tokens.stream_subject(stream_id), tokens.VERIFICATION, payload, now)

    # -- events (core.security_events) -----------------------------------------------------------------
    def emit(self, event: SecurityEvent, account_id: str, now: datetime,
             details: Mapping[str, str] | None = None) -> int:
        """Queue ``event`` for the enabled streams, held for the paused ones (module docstring); how many."""
        apps = sorted(self._apps_of(account_id))
        payload = tokens.event_payload(details, now)
        queued = 0
        for stream in self.streams.receiving(apps, event.value):
            client = self.clients(stream.client_id)
            if client is None:  # no longer registered: it knows nobody any more
                continue
            held = stream.status is StreamStatus.PAUSED
            if held and not self._room_to_hold(stream.stream_id):
                continue
            sub_id = tokens.account_subject(self.settings.issuer, self._subject_of(client, account_id))
            if self._queue(stream, client, sub_id, event.value, payload, now, held=held):
                queued += 1
                if held:
                    self._settle(stream.stream_id, now)
        return queued

    def _room_to_hold(self, stream_id: str) -> bool:
        """Whether the paused stream holds fewer than ``MAX_HELD_PER_STREAM`` events; if not, warn and count."""
        held = self._outbox.held_count(stream_id)
        if held < MAX_HELD_PER_STREAM:
            return True
        with self._lock:
            self.not_held[stream_id] += 1
            count = self.not_held[stream_id]
        log.warning("ssf stream %s is paused and holds %d events: this event is not held (%d not held so far)",
                    stream_id, held, count)
        return False

    def _settle(self, stream_id: str, now: datetime) -> None:
        """After holding an event: if the stream was enabled, disabled or deleted meanwhile, its ``set_status`` or
        ``delete`` may have released or dropped the held events before this one was written; do it again (either
        sees this one: it was written before the stream is read here)."""
        current = self.streams.get(stream_id)
        if current is None or current.status is StreamStatus.DISABLED:
            self._outbox.drop_held(stream_id)
        elif current.status is StreamStatus.ENABLED:
            self._outbox.release_held(stream_id, now)

    def _queue(self, stream: SsfStream, client: OidcClient, sub_id: Mapping[str, str], event: str,
               payload: Mapping[str, Any], now: datetime, *, held: bool = False) -> bool:
        jti = self._new_id()
        claims = tokens.set_claims(self.settings.issuer, client.client_id, jti, now, sub_id, event, payload)
        token = tokens.signed_set(self._keys, client, claims)
        queued = self._outbox.enqueue(OutgoingMessage(
            receiver=stream.stream_id, jti=jti, kind=tokens.KIND, url=stream.endpoint_url, body=token,
            content_type=tokens.SET_CONTENT_TYPE, authorization=stream.authorization_header), now, held=held)
        log.info("ssf event %s: stream=%s client=%s event=%s jti=%s", "held" if held else "queued",
                 stream.stream_id, client.client_id, event.rsplit("/", 1)[-1], jti)
        return queued

    def list_of(self, client: OidcClient) -> Sequence[SsfStream]:
        return self.streams.of_client(client.client_id)


def _stream_id(body: Mapping[str, Any]) -> str:
    value = body.get("stream_id")
    if not isinstance(value, str) or not value:
        raise invalid("stream_id is missing (SSF 1.0 §8.1.1.3)")
    return value


_check: type[SecurityEvents] = SsfTransmitter
