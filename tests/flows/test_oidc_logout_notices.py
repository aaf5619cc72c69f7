"""Back-Channel and Front-Channel Logout against a running broker, over real HTTP (issue 18).

A relying party registered with logout URIs signs a citizen in through the authlib app of ``oidc_peers``; the
logout token the broker makes for that session is then checked as that app would (Back-Channel Logout 1.0 §2.6):
the broker learnt from its discovery document, the signature against the JWKS at its ``jwks_uri``, and ``sub`` and
``sid`` those of the app's ID token. Dynamic registration (RFC 7591) takes the four logout members, answers
them back, and refuses bad values with ``invalid_client_metadata``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from broker.downstream.oidc.session_notices import OidcSessionNotices
from broker.web.services import Services
from tests.databases import BACKENDS, database_for
from tests.flows.federation import Federation, running_federation
from tests.flows.oidc_logout_support import logout_token_of, validate_logout_token
from tests.flows.oidc_peers import relying_party
from tests.flows.oidc_registration_support import sign_in
from tests.peers.browser import Browser

INITIAL_TOKEN = "initial-" + secrets.token_urlsafe(32)
NOW = datetime.now(UTC).replace(microsecond=0)  # the tests' own clock: no test depends on a date
APP = "https://permits.city.example.org"
BACK, FRONT = f"{APP}/oidc/backchannel-logout", f"{APP}/oidc/frontchannel-logout?tab=1"


@pytest.fixture(scope="module", params=BACKENDS)
def fed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        key_folder: Path) -> Iterator[Federation]:
    """One federation for the module, with Dynamic Client Registration open (every client id is new)."""
    folder = tmp_path_factory.mktemp("logout")
    token_file = folder / "registration.token"
    token_file.write_text(INITIAL_TOKEN)
    config = (f'[oidc]\nregistration_token_file = "{token_file}"\n'
              'registration_allowed_hosts = ["127.0.0.1", "*.city.example.org"]\n'
              '[limits]\nper_ip = "100000/minute"\n')
    database = database_for(request.param, folder)
    try:
        with running_federation(folder / "instance", key_folder, next(database), extra_config=config) as running:
            yield running
    finally:
        for _ in database:
            pass


def services(fed: Federation) -> Services:
    svc: Services = fed.app.extensions["broker"]
    return svc


def notices(fed: Federation) -> OidcSessionNotices:
    """Built the way the wiring builds it: the provider's issuer, the key ring, the registry's client lookup."""
    svc = services(fed)
    return OidcSessionNotices(svc.oidc.settings.issuer, svc.keys, svc.registry.oidc_client)


def test_a_signed_in_app_gets_a_logout_token_it_accepts(fed: Federation) -> None:
    with relying_party(fed, "logout-app", backchannel_logout_uri=BACK, frontchannel_logout_uri=FRONT,
                       frontchannel_logout_session_required=True) as rp, Browser() as browser:
        page = sign_in(browser, rp)
        assert page.status_code == 200, page.text
        assert rp.last.error is None and rp.last.id_token_claims is not None
        id_claims = rp.last.id_token_claims
        sid, sub = id_claims["sid"], id_claims["sub"]

    participant = next(p for p in services(fed).sso_sessions.participants(sid) if p.party_id == "logout-app")
    message = notices(fed).back_channel(participant, sid, NOW)
    assert message is not None
    assert (message.receiver, message.url, message.kind) == ("logout-app", BACK, "backchannel-logout")

    # the app's side: only what the broker publishes
    discovery = requests.get(f"{fed.url}/.well-known/openid-configuration", timeout=10).json()
    assert discovery["backchannel_logout_supported"] is True
    assert discovery["backchannel_logout_session_supported"] is True
    assert discovery["frontchannel_logout_supported"] is True
    assert discovery["frontchannel_logout_session_supported"] is True
    jwks = requests.get(discovery["jwks_uri"], timeout=10).json()
    claims = validate_logout_token(logout_token_of(message.body), jwks, discovery["issuer"], "logout-app",
                                   int(NOW.timestamp()))
    assert claims["iss"] == id_claims["iss"]
    assert (claims["sub"], claims["sid"]) == (sub, sid), "the session and person of the app's own ID token"
    assert claims["jti"] == message.jti

    frame = notices(fed).front_channel(participant, sid)
    assert frame is not None and frame.startswith(FRONT + "&iss=")
    assert requests.Request("GET", frame).prepare().url == frame  # already a finished URL
    assert parse_qs(urlsplit(frame).query) == {"tab": ["1"], "iss": [discovery["issuer"]], "sid": [sid]}


def register(fed: Federation, metadata: Any) -> requests.Response:
    return requests.post(f"{fed.url}/oidc/register", json=metadata, timeout=10,
                         headers={"Authorization": f"Bearer {INITIAL_TOKEN}"})


def test_registration_takes_the_logout_members_and_answers_them_back(fed: Federation) -> None:
    logout = {"backchannel_logout_uri": BACK, "backchannel_logout_session_required": True,
              "frontchannel_logout_uri": FRONT, "frontchannel_logout_session_required": False}
    response = register(fed, {"redirect_uris": [f"{APP}/cb"], **logout})

    assert response.status_code == 201, response.text
    answer = response.json()
    assert {k: answer[k] for k in logout} == logout
    read = requests.get(answer["registration_client_uri"], timeout=10,
                        headers={"Authorization": f"Bearer {answer['registration_access_token']}"})
    assert {k: read.json()[k] for k in logout} == logout
    client = services(fed).registry.oidc_client(answer["client_id"])
    assert client is not None and client.backchannel_logout_uri == BACK and client.frontchannel_logout_uri == FRONT


REFUSED = [
    ("back-channel over http", {"backchannel_logout_uri": "http://permits.city.example.org/bc"}),
    ("back-channel with a fragment", {"backchannel_logout_uri": f"{BACK}#x"}),
    ("back-channel on a host not allowed", {"backchannel_logout_uri": "https://evil.example.com/bc"}),
    ("back-channel on an IP address", {"backchannel_logout_uri": "https://10.0.0.7/bc"}),
    ("front-channel relative", {"frontchannel_logout_uri": "/logout"}),
    ("front-channel javascript", {"frontchannel_logout_uri": "javascript:alert(1)"}),
    ("front-channel not text", {"frontchannel_logout_uri": [FRONT]}),
    ("back-channel flag as text", {"backchannel_logout_session_required": "true"}),
    ("front-channel flag as a number", {"frontchannel_logout_session_required": 1}),
]


@pytest.mark.parametrize(("case", "metadata"), REFUSED, ids=[c[0] for c in REFUSED])
def test_registration_refuses_bad_logout_members(fed: Federation, case: str, metadata: dict[str, Any]) -> None:
    response = register(fed, {"redirect_uris": [f"{APP}/cb"], **metadata})

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_client_metadata"
    member = next(iter(metadata))
    assert member in response.json()["error_description"], json.dumps(response.json())
