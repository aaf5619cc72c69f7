"""The account attack world: the attacker, another upstream and the world fixture, shared by the account and link-
offer attack tests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from broker.demo.oidc_provider import (
    AppleStyle,
    DemoClient,
    DemoProvider,
    DemoProviderSettings,
    DemoUser,
    create_demo_provider,
)
from broker.keys.keyring import write_private
from tests.flows.federation import ExtraUpstream, Federation
from tests.flows.saml_to_social_support import EntraUpstream, GitHubUpstream
from tests.peers.servers import WsgiApp
from tests.security.attack_support import (
    BOTH_AUTHORITATIVE,
    federation_with,
)

VICTIM_EMAIL = "anna@example.org"  # the demo provider "op" signs Anna in with this verified address


APPLE_TEAM, APPLE_KEY, APPLE_CLIENT = "TEAM000042", "KEY0000042", "org.example.city-broker"


AINO = DemoUser("aino", "sisu", {"sub": "000042.c0ffee.1234", "email": "aino@example.org", "email_verified": True,
                                 "given_name": "Aino", "family_name": "Korhonen"})


#: the address Apple's relay gives Aino for this team (``broker.demo.oidc_provider_apple``: unique per team)
AINO_RELAY = hashlib.sha256(f"{APPLE_TEAM}/{AINO.claims['sub']}".encode()).hexdigest()[:12] + \
    "@privaterelay.appleid.com"


MALLORY = DemoUser("mallory", "pw", {"sub": "mallory-0666", "email": VICTIM_EMAIL, "email_verified": True,
                                     "given_name": "Mallory", "family_name": "Attacker"})


COPYCAT = DemoUser("copycat", "pw", {"sub": "copycat-0007", "email": AINO_RELAY, "email_verified": True,
                                     "given_name": "Copy", "family_name": "Cat"})


def _secret(folder: Path, name: str) -> str:
    value = secrets.token_urlsafe(24)
    write_private(folder / "certs" / f"{name}.secret", value.encode())
    return value


class OtherUpstream:
    """A second, ordinary OpenID provider where the attacker holds an account with a chosen verified address."""

    provider: DemoProvider

    def build(self, base_url: str, redirect_uri: str, folder: Path) -> tuple[WsgiApp, dict[str, Any]]:
        self.provider = create_demo_provider(DemoProviderSettings(
            issuer=base_url,
            clients=(DemoClient("other-client", _secret(folder, "other"), (redirect_uri,)),),
            users=(MALLORY, COPYCAT),
            auto_login=MALLORY.username,
        ))
        return self.provider.app, {"protocol": "oidc", "issuer": base_url, "client_id": "other-client",
                                   "display_name": "Other provider", "client_secret_file": "certs/other.secret"}

    def sign_in_as(self, user: DemoUser) -> None:
        self.provider.settings = dataclasses.replace(self.provider.settings, auto_login=user.username)


class RelayAppleUpstream:
    """An Apple-style provider (on another site) where Aino hides her address behind the private relay."""

    def build(self, base_url: str, redirect_uri: str, folder: Path) -> tuple[WsgiApp, dict[str, Any]]:
        team_key = ec.generate_private_key(ec.SECP256R1())
        key_file = folder / "certs" / f"AuthKey_{APPLE_KEY}.p8"
        write_private(key_file, team_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        provider = create_demo_provider(DemoProviderSettings(
            issuer=base_url,
            clients=(DemoClient(APPLE_CLIENT, "a static secret Apple never accepts", (redirect_uri,)),),
            users=(AINO,),
            auto_login=AINO.username,
            apple=AppleStyle(APPLE_TEAM, {APPLE_KEY: team_key.public_key()}, private_relay=frozenset({"aino"})),
        ))
        return provider.app, {
            "protocol": "oidc", "preset": "apple", "issuer": base_url, "client_id": APPLE_CLIENT,
            "options": {"team_id": APPLE_TEAM, "key_id": APPLE_KEY, "private_key_file": str(key_file)},
        }


@dataclasses.dataclass
class World:
    federation: Federation
    other: OtherUpstream
    github: GitHubUpstream
    entra: EntraUpstream


@pytest.fixture
def world(tmp_path: Path, key_folder: Path) -> Iterator[World]:
    other, github, entra = OtherUpstream(), GitHubUpstream(), EntraUpstream()
    extras = [ExtraUpstream("other", other.build), ExtraUpstream("github", github.build),
              ExtraUpstream("entra", entra.build), ExtraUpstream("apple", RelayAppleUpstream().build, host="localhost")]
    with federation_with(tmp_path, key_folder, extras, BOTH_AUTHORITATIVE) as federation:
        assert federation.app.extensions["broker"].registry.snapshot.problems == ()
        yield World(federation, other, github, entra)
