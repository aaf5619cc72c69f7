"""The JSON of stream management (SSF 1.0 §7.1, §8.1.1-8.1.2): what a receiver sends, checked, and what the
transmitter answers. Protocol logic only; the Flask views are ``broker.web.ssf``.

Untrusted: every request body. A stream's ``delivery`` must be push (RFC 8935) to an ``endpoint_url`` that the
client could register as a back-channel logout URI (``broker.oidc.client_metadata``): https, http only on the
loopback hosts; for a dynamically registered client only hosts of ``registration_allowed_hosts`` and a DNS name
(the broker itself POSTs there, so such a client may not point it at a loopback host or an IP address unless the
operator listed that very host). ``authorization_header`` is one header value of printable ASCII (no CR or LF:
it is sent as a header), never echoed in an answer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from broker.core.security_events import SecurityEvent
from broker.core.ssf_streams import SsfStream, StreamStatus
from broker.downstream.oidc.errors import OAuthError
from broker.downstream.ssf.tokens import PUSH
from broker.oidc.client import DYNAMIC_SOURCE, OidcClient
from broker.oidc.client_metadata import RegistrationPolicy
from broker.oidc.redirect_uris import LOOPBACK_HOSTS, UriRefused, redirect_uri_sector

#: the event types a stream can deliver (``events_supported``); verification events are sent on request only
SUPPORTED_EVENTS = tuple(event.value for event in SecurityEvent)
MAX_EVENTS = 50
MAX_EVENT_URI = 255
MAX_DESCRIPTION = 255
MAX_AUTHORIZATION = 1024
MAX_STATE = 255
#: SSF 1.0 §8.1.1: the least time between two verification requests of one stream, in seconds
MIN_VERIFICATION_INTERVAL = 60
#: stream members only the transmitter sets (SSF 1.0 §8.1.1): ignored when a receiver sends them
TRANSMITTER_SUPPLIED = ("stream_id", "iss", "aud", "events_supported", "events_delivered",
                        "min_verification_interval", "inactivity_timeout")


def invalid(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


@dataclass(frozen=True)
class StreamRequest:
    """What the receiver may choose of a stream."""

    events_requested: tuple[str, ...]
    endpoint_url: str
    authorization_header: str | None
    description: str | None

    @property
    def events_delivered(self) -> tuple[str, ...]:
        """SSF 1.0 §8.1.1: the requested types the transmitter supports, in the order asked."""
        return tuple(event for event in self.events_requested if event in SUPPORTED_EVENTS)


def stream_request(body: Mapping[str, Any], client: OidcClient, policy: RegistrationPolicy,
                   current: SsfStream | None = None) -> StreamRequest:
    """A create (``current`` None) or replace request, or with ``current`` and a partial body an update (PATCH):
    members absent from the body keep their current values (``authorization_header`` inside ``delivery`` too)."""
    delivery = body.get("delivery")
    if delivery is None and current is not None:
        delivery = {}
    if not isinstance(delivery, Mapping):
        raise invalid("delivery must be an object with method urn:ietf:rfc:8935 and endpoint_url (SSF 1.0 §8.1.1)")
    method = delivery.get("method", PUSH if current is not None else None)
    if method != PUSH:
        raise invalid("delivery.method: only push delivery (urn:ietf:rfc:8935) is supported")
    url = delivery.get("endpoint_url", current.endpoint_url if current is not None else None)
    endpoint_url = _endpoint_url(url, client, policy)
    if "authorization_header" in delivery:
        authorization = _authorization(delivery["authorization_header"])
    else:
        authorization = current.authorization_header if current is not None else None
    events = _events(body["events_requested"]) if "events_requested" in body else (
        current.events_requested if current is not None else ())
    description = _description(body["description"]) if "description" in body else (
        current.description if current is not None else None)
    return StreamRequest(events, endpoint_url, authorization, description)


def _endpoint_url(value: object, client: OidcClient, policy: RegistrationPolicy) -> str:
    if not isinstance(value, str) or value.partition(":")[0].lower() not in ("https", "http"):
        raise invalid("delivery.endpoint_url must be an absolute https URL (http only on the loopback hosts)")
    dynamic = client.source == DYNAMIC_SOURCE
    allows = policy.allows_host if dynamic else (lambda _host: True)
    try:
        host = redirect_uri_sector(value, allows, public=False)
    except UriRefused as exc:
        raise invalid(f"delivery.endpoint_url {exc}") from exc
    listed = {entry.lower().strip("[]") for entry in policy.allowed_hosts}
    if dynamic and (host in LOOPBACK_HOSTS or _is_ip_address(host)) and host not in listed:
        raise invalid("delivery.endpoint_url must name its host by a DNS name: the broker sends this request "
                      "itself, so a registered client may not point it at a loopback host or an IP address")
    return value


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _authorization(value: object) -> str | None:
    if value is None:
        return None
    if (not isinstance(value, str) or not value or len(value) > MAX_AUTHORIZATION or not value.isascii()
            or not value.isprintable()):
        raise invalid(f"delivery.authorization_header must be printable ASCII, at most {MAX_AUTHORIZATION} "
                      "characters")
    return value


def _events(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_EVENTS or not all(
            isinstance(event, str) and 0 < len(event) <= MAX_EVENT_URI for event in value):
        raise invalid(f"events_requested must be a list of at most {MAX_EVENTS} event type URIs")
    return tuple(dict.fromkeys(value))  # each once, in the order asked


def _description(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION or not value.isprintable():
        raise invalid(f"description must be printable text of at most {MAX_DESCRIPTION} characters")
    return value


def stream_id_of(value: object) -> str:
    """A ``stream_id`` from a query or a body; only its shape is checked here."""
    if not isinstance(value, str) or not value or len(value) > 64 or not value.isascii() or not value.isprintable():
        raise invalid("stream_id is missing or malformed")
    return value


def status_of(value: object) -> StreamStatus:
    if not isinstance(value, str) or value not in set(StreamStatus):
        raise invalid("status must be enabled, paused or disabled (SSF 1.0 §8.1.2)")
    return StreamStatus(value)


def reason_of(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION or not value.isprintable():
        raise invalid(f"reason must be printable text of at most {MAX_DESCRIPTION} characters")
    return value


def state_of(value: object) -> str | None:
    """SSF 1.0 §8.1.4.2: the receiver's optional ``state``, echoed in the verification event."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_STATE or not value.isprintable():
        raise invalid(f"state must be printable text of at most {MAX_STATE} characters")
    return value


def stream_document(stream: SsfStream, issuer: str) -> dict[str, Any]:
    """SSF 1.0 §8.1.1: the stream's configuration; ``authorization_header`` is a secret and is never echoed."""
    document: dict[str, Any] = {
        "stream_id": stream.stream_id,
        "iss": issuer,
        "aud": stream.client_id,
        "delivery": {"method": PUSH, "endpoint_url": stream.endpoint_url},
        "events_supported": list(SUPPORTED_EVENTS),
        "events_requested": list(stream.events_requested),
        "events_delivered": list(stream.events_delivered),
        "min_verification_interval": MIN_VERIFICATION_INTERVAL,
    }
    if stream.description is not None:
        document["description"] = stream.description
    return document


def status_document(stream: SsfStream) -> dict[str, Any]:
    """SSF 1.0 §8.1.2.1."""
    document: dict[str, Any] = {"stream_id": stream.stream_id, "status": stream.status.value}
    if stream.status_reason is not None:
        document["reason"] = stream.status_reason
    return document


@dataclass(frozen=True)
class TransmitterSettings:
    issuer: str
    jwks_uri: str
    configuration_endpoint: str
    status_endpoint: str
    verification_endpoint: str


def transmitter_metadata(settings: TransmitterSettings) -> dict[str, Any]:
    """SSF 1.0 §7.1, served at ``/.well-known/ssf-configuration``.

    ``authorization_schemes``: the receiver authenticates as the registered OpenID client it is, with its client
    secret in HTTP Basic (RFC 7617, as RFC 6749 §2.3.1 ``client_secret_basic``). ``default_subjects`` ``ALL``:
    a stream hears about every account that used its app (no subjects to add or remove)."""
    return {
        "spec_version": "1_0",
        "issuer": settings.issuer,
        "jwks_uri": settings.jwks_uri,
        "delivery_methods_supported": [PUSH],
        "configuration_endpoint": settings.configuration_endpoint,
        "status_endpoint": settings.status_endpoint,
        "verification_endpoint": settings.verification_endpoint,
        "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:7617"}],
        "default_subjects": "ALL",
    }

