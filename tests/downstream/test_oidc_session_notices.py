"""``OidcSessionNotices``: the logout token of Back-Channel Logout 1.0 §2.4-2.5, checked as a relying party checks
it (§2.6, joserfc against the published JWKS), and the front-channel logout URL of Front-Channel Logout 1.0 §3;
the discovery document advertises both (Back-Channel §2.1, Front-Channel §3)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import count
from urllib.parse import parse_qsl, urlsplit

import pytest
from joserfc.errors import JoseError

from broker.core.logout_ports import SessionNotices
from broker.core.model import Protocol
from broker.core.sessions import Participant
from broker.downstream.oidc.discovery import DiscoveryInputs, discovery_document
from broker.downstream.oidc.session_notices import OidcSessionNotices, new_jti
from broker.keys.jwt import public_jwks
from broker.keys.keyring import KeyRing, generate_keyring, load_keyring
from broker.oidc.client import OidcClient
from tests.flows.oidc_logout_support import logout_token_of, validate_logout_token

ISSUER = "https://login.city.example.org"
NOW = datetime.now(UTC).replace(microsecond=0)  # the tests' own clock: no test depends on a date
SID = "Xk3_session-id"
BACK = "https://permits.city.example.org/oidc/backchannel-logout"
FRONT = "https://permits.city.example.org/oidc/frontchannel-logout"
CLIENT = OidcClient("permits", "Parking permits", ("https://permits.city.example.org/cb",), "client_secret_basic",
                    sector="permits.city.example.org", backchannel_logout_uri=BACK, frontchannel_logout_uri=FRONT)
PARTICIPANT = Participant("permits", Protocol.OIDC, "pairwise-sub-of-permits")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeyRing:
    certs = tmp_path_factory.mktemp("certs")
    generate_keyring(certs, "notices broker", bits=2048)
    return load_keyring(certs)


def notices(keys: KeyRing, *clients: OidcClient) -> OidcSessionNotices:
    registered = {c.client_id: c for c in clients or (CLIENT,)}
    ids = count(1)
    return OidcSessionNotices(ISSUER, keys, registered.get, new_id=lambda: f"jti-{next(ids)}")


def test_it_is_the_port_the_journeys_use(keys: KeyRing) -> None:
    port: SessionNotices = notices(keys)
    assert port.back_channel(PARTICIPANT, SID, NOW) is not None


# -- back channel -------------------------------------------------------------------------------------------------

def test_the_logout_token_passes_the_relying_partys_checks(keys: KeyRing) -> None:
    message = notices(keys).back_channel(PARTICIPANT, SID, NOW)

    assert message is not None
    assert (message.receiver, message.jti, message.kind) == ("permits", "jti-1", "backchannel-logout")
    assert message.url == BACK
    assert message.content_type == "application/x-www-form-urlencoded"
    claims = validate_logout_token(logout_token_of(message.body), public_jwks(keys.jwt_keys), ISSUER, "permits",
                                   int(NOW.timestamp()))
    assert claims == {
        "iss": ISSUER, "aud": "permits", "iat": int(NOW.timestamp()), "exp": int(NOW.timestamp()) + 120,
        "jti": "jti-1", "sub": "pairwise-sub-of-permits", "sid": SID,
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    }


def test_the_token_expires_after_two_minutes(keys: KeyRing) -> None:
    message = notices(keys).back_channel(PARTICIPANT, SID, NOW)
    assert message is not None
    token, jwks = logout_token_of(message.body), public_jwks(keys.jwt_keys)
    validate_logout_token(token, jwks, ISSUER, "permits", int((NOW + timedelta(seconds=119)).timestamp()))
    with pytest.raises(JoseError):
        validate_logout_token(token, jwks, ISSUER, "permits", int((NOW + timedelta(seconds=121)).timestamp()))


def test_sub_and_sid_are_sent_whether_the_client_asked_for_sid_or_not(keys: KeyRing) -> None:
    for required in (False, True):
        client = replace(CLIENT, backchannel_logout_session_required=required)
        message = notices(keys, client).back_channel(PARTICIPANT, SID, NOW)
        assert message is not None
        claims = validate_logout_token(logout_token_of(message.body), public_jwks(keys.jwt_keys), ISSUER,
                                       "permits", int(NOW.timestamp()))
        assert (claims["sub"], claims["sid"]) == ("pairwise-sub-of-permits", SID)


def test_it_is_signed_like_the_clients_id_tokens(keys: KeyRing) -> None:
    es_client = replace(CLIENT, id_token_signed_response_alg="ES256")
    message = notices(keys, es_client).back_channel(PARTICIPANT, SID, NOW)
    assert message is not None
    token, jwks = logout_token_of(message.body), public_jwks(keys.jwt_keys)

    validate_logout_token(token, jwks, ISSUER, "permits", int(NOW.timestamp()), algorithm="ES256")
    with pytest.raises(AssertionError):
        validate_logout_token(token, jwks, ISSUER, "permits", int(NOW.timestamp()), algorithm="RS256")


def test_the_audience_and_issuer_are_checked(keys: KeyRing) -> None:
    message = notices(keys).back_channel(PARTICIPANT, SID, NOW)
    assert message is not None
    token, jwks = logout_token_of(message.body), public_jwks(keys.jwt_keys)
    with pytest.raises(JoseError):
        validate_logout_token(token, jwks, ISSUER, "another-app", int(NOW.timestamp()))
    with pytest.raises(JoseError):
        validate_logout_token(token, jwks, "https://elsewhere.example.org", "permits", int(NOW.timestamp()))


def test_every_token_has_a_new_jti() -> None:
    assert len({new_jti() for _ in range(100)}) == 100
    assert len(new_jti()) >= 32


def test_two_sessions_get_two_tokens(keys: KeyRing) -> None:
    sender = notices(keys)
    first, second = sender.back_channel(PARTICIPANT, SID, NOW), sender.back_channel(PARTICIPANT, "other", NOW)
    assert first is not None and second is not None
    assert first.jti != second.jti and first.body != second.body


@pytest.mark.parametrize(("participant", "client"), [
    (Participant("permits", Protocol.SAML, "name-id"), CLIENT),  # a SAML participant: the AppLogout chain's
    (Participant("gone", Protocol.OIDC, "sub"), CLIENT),  # its client is no longer registered
    (PARTICIPANT, replace(CLIENT, backchannel_logout_uri=None, frontchannel_logout_uri=None)),
], ids=["saml", "unregistered", "no-logout-uris"])
def test_nothing_for_participants_without_a_logout_uri(keys: KeyRing, participant: Participant,
                                                      client: OidcClient) -> None:
    sender = notices(keys, client)
    assert sender.back_channel(participant, SID, NOW) is None
    assert sender.front_channel(participant, SID) is None


# -- front channel ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("uri", "required", "expected"), [
    (FRONT, False, FRONT),
    (FRONT, True, f"{FRONT}?iss=https%3A%2F%2Flogin.city.example.org&sid={SID}"),
    (f"{FRONT}?app=permits&x=a%20b", False, f"{FRONT}?app=permits&x=a%20b"),
    (f"{FRONT}?app=permits&x=a%20b", True,
     f"{FRONT}?app=permits&x=a%20b&iss=https%3A%2F%2Flogin.city.example.org&sid={SID}"),
    ("http://127.0.0.1:8080/logout", True, f"http://127.0.0.1:8080/logout?iss=https%3A%2F%2Flogin.city.example.org"
                                           f"&sid={SID}"),
], ids=["plain", "with-session", "query-kept", "query-kept-with-session", "loopback"])
def test_the_front_channel_url(keys: KeyRing, uri: str, required: bool, expected: str) -> None:
    client = replace(CLIENT, frontchannel_logout_uri=uri, frontchannel_logout_session_required=required)
    url = notices(keys, client).front_channel(PARTICIPANT, SID)

    assert url == expected
    if required:
        query = dict(parse_qsl(urlsplit(url).query))
        assert (query["iss"], query["sid"]) == (ISSUER, SID)


def test_the_front_channel_sid_is_encoded(keys: KeyRing) -> None:
    client = replace(CLIENT, frontchannel_logout_session_required=True)
    url = notices(keys, client).front_channel(PARTICIPANT, "a&b=c d")
    assert url is not None and dict(parse_qsl(urlsplit(url).query))["sid"] == "a&b=c d"


# -- discovery ----------------------------------------------------------------------------------------------------

def test_discovery_advertises_both_logouts_with_sessions() -> None:
    document = discovery_document(DiscoveryInputs(ISSUER, registration_open=False))
    for member in ("backchannel_logout_supported", "backchannel_logout_session_supported",
                   "frontchannel_logout_supported", "frontchannel_logout_session_supported"):
        assert document[member] is True, member
