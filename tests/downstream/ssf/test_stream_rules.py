"""Stream requests and receiver authentication of the SSF transmitter, without a web app (SSF 1.0 §8.1.1;
``broker.downstream.ssf.config``, ``receiver_auth``): where a client may point the broker, what a PATCH keeps, and
which clients may manage streams."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from broker.core.security_events import SecurityEvent
from broker.core.ssf_streams import SsfStream, StreamStatus
from broker.downstream.oidc.errors import OAuthError
from broker.downstream.ssf.config import stream_request
from broker.downstream.ssf.receiver_auth import authenticate_receiver
from broker.oidc.client import DYNAMIC_SOURCE, OidcClient, hash_secret
from broker.oidc.client_metadata import RegistrationPolicy

NOW = datetime.now(UTC)
POLICY = RegistrationPolicy(frozenset({"*.city.example.org", "127.0.0.1"}), dynamic=True)
FILE_CLIENT = OidcClient("permits", "Permits", ("https://permits.example/cb",), "client_secret_basic",
                         hash_secret("s3cret"), source="metadata/oidc-clients/permits.json")
DYNAMIC_CLIENT = OidcClient("dyn", "Dyn", ("https://dyn.city.example.org/cb",), "client_secret_post",
                            hash_secret("s3cret"), source=DYNAMIC_SOURCE)
REVOKED = SecurityEvent.SESSION_REVOKED.value


def asked(url: str, client: OidcClient) -> str:
    body = {"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": url}, "events_requested": [REVOKED]}
    return stream_request(body, client, POLICY).endpoint_url


@pytest.mark.parametrize(("url", "client", "allowed"), [
    ("https://anywhere.example/ssf", FILE_CLIENT, True),  # the operator registered the file client
    ("http://127.0.0.1:8080/ssf", FILE_CLIENT, True),  # loopback for development
    ("http://anywhere.example/ssf", FILE_CLIENT, False),  # http off loopback
    ("https://events.city.example.org/ssf", DYNAMIC_CLIENT, True),
    ("https://anywhere.example/ssf", DYNAMIC_CLIENT, False),  # not a registration_allowed_hosts host
    ("http://127.0.0.1:8080/ssf", DYNAMIC_CLIENT, True),  # that very host is listed
    ("http://localhost:8080/ssf", DYNAMIC_CLIENT, False),  # loopback not listed: not the broker's own machine
    ("https://user:pw@events.city.example.org/ssf", DYNAMIC_CLIENT, False),
])
def test_endpoint_url_follows_the_clients_registration_host_rules(url: str, client: OidcClient,
                                                                  allowed: bool) -> None:
    if allowed:
        assert asked(url, client) == url
    else:
        with pytest.raises(OAuthError) as refused:
            asked(url, client)
        assert refused.value.status == 400


def test_a_partial_update_keeps_what_it_does_not_name() -> None:
    current = SsfStream("s1", "permits", (REVOKED,), (REVOKED,), "https://permits.example/ssf",
                        StreamStatus.ENABLED, NOW, NOW, "Bearer kept", "desc")
    patched = stream_request({"stream_id": "s1", "events_requested": ["urn:x", REVOKED, REVOKED]}, FILE_CLIENT,
                             POLICY, current)
    assert patched.endpoint_url == current.endpoint_url and patched.authorization_header == "Bearer kept"
    assert patched.events_requested == ("urn:x", REVOKED) and patched.events_delivered == (REVOKED,)
    cleared = stream_request({"delivery": {"authorization_header": None}}, FILE_CLIENT, POLICY, current)
    assert cleared.authorization_header is None


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_only_clients_with_a_secret_authenticate() -> None:
    jwt_client = OidcClient("keys", "Keys", ("https://keys.example/cb",), "private_key_jwt", jwks='{"keys": []}')
    clients = {c.client_id: c for c in (FILE_CLIENT, DYNAMIC_CLIENT, jwt_client)}
    assert authenticate_receiver(basic("permits", "s3cret"), clients.get) is FILE_CLIENT
    assert authenticate_receiver(basic("dyn", "s3cret"), clients.get) is DYNAMIC_CLIENT  # client_secret_post
    for header in (None, "Bearer x", basic("permits", "wrong"), basic("keys", ""), basic("nobody", "s3cret"),
                   "Basic !!!"):
        with pytest.raises(OAuthError) as refused:
            authenticate_receiver(header, clients.get)
        assert (refused.value.status, refused.value.error) == (401, "invalid_client")
