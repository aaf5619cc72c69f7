"""A demo OpenID provider on 127.0.0.1, a callback endpoint standing in for the broker, and the adapter under test.

The provider is real (authlib's server), the browser is real HTTP (``tests.peers.browser``), and the adapter
talks to the provider through the broker's real HTTP client (``UpstreamHttp``): nothing is mocked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from broker.core.model import UpstreamIdentity
from broker.demo.oidc_provider import (
    DemoClient,
    DemoProvider,
    DemoProviderSettings,
    DemoUser,
    create_demo_provider,
)
from broker.upstream.http_pool import UpstreamHttp
from broker.upstream.oidc import OidcUpstream, OidcUpstreamSettings, PendingAuthorization
from tests.peers.browser import Browser
from tests.peers.servers import LateApp, RunningServer, serve
from tests.upstream.support import close_worlds

CLIENT_ID = "broker-test"
CLIENT_SECRET = "s3cret with spaces:and%colons"  # exercises RFC 6749 §2.3.1 encoding
ALICE = DemoUser(
    username="alice",
    password="correct horse",
    claims={
        "sub": "alice-0001",
        "email": "alice@example.org",
        "email_verified": True,
        "given_name": "Alice",
        "family_name": "Anders",
        "name": "Alice Anders",
        "nickname": "ally",  # outside the broker's vocabulary: dropped
    },
)


def callback_app() -> Flask:
    """Stands in for the broker's redirect URI: answers with the query it received, as JSON."""
    app = Flask("callback")

    @app.get("/callback")
    def callback() -> ResponseReturnValue:
        return jsonify(request.args.to_dict())

    return app


@pytest.fixture(scope="session")
def provider_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def callback_server() -> Iterator[RunningServer]:
    with serve(callback_app()) as server:
        yield server


@pytest.fixture
def redirect_uri(callback_server: RunningServer) -> str:
    return callback_server.url + "/callback"


@dataclass
class OidcWorld:
    """One provider, its server, and helpers to run the adapter against it."""

    provider: DemoProvider
    server: RunningServer
    redirect_uri: str
    http: UpstreamHttp
    browser: Browser
    _upstreams: list[OidcUpstream] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return self.provider.issuer

    def upstream(self, **overrides: object) -> OidcUpstream:
        values: dict[str, object] = {
            "name": "demo", "display_name": "Demo provider", "issuer": self.issuer, "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET, "redirect_uri": self.redirect_uri,
        }
        values.update(overrides)
        return OidcUpstream(OidcUpstreamSettings(**values), self.http)  # type: ignore[arg-type]

    def authorize(
        self, upstream: OidcUpstream, now: datetime | None = None
    ) -> tuple[PendingAuthorization, dict[str, str]]:
        """``start``, then the browser through the provider (auto login) to the callback: its query params."""
        url, pending = upstream.start(now or utcnow())
        answer = self.browser.get(url)
        assert answer.status_code == 200, answer.text
        assert urlsplit(answer.url).path == "/callback"
        return pending, dict(parse_qsl(urlsplit(answer.url).query))

    def login(self, upstream: OidcUpstream, now: datetime | None = None) -> UpstreamIdentity:
        moment = now or utcnow()
        pending, params = self.authorize(upstream, moment)
        return upstream.finish(pending, params, moment)


def utcnow() -> datetime:
    return datetime.now(UTC)


def in_seconds(seconds: float) -> int:
    """A Unix time ``seconds`` from now, for claim overrides."""
    return int((utcnow() + timedelta(seconds=seconds)).timestamp())


@pytest.fixture
def make_world(
    provider_key: rsa.RSAPrivateKey, redirect_uri: str
) -> Iterator[Callable[..., OidcWorld]]:
    worlds: list[OidcWorld] = []

    def make(
        auto_login: str | None = "alice",
        acr: str | None = None,
        token_auth_methods: tuple[str, ...] = ("client_secret_basic", "client_secret_post"),
    ) -> OidcWorld:
        late = LateApp()
        server = serve(late)
        provider = create_demo_provider(DemoProviderSettings(
            issuer=server.url,
            clients=(DemoClient(CLIENT_ID, CLIENT_SECRET, (redirect_uri,)),),
            users=(ALICE,),
            signing_key=provider_key,
            auto_login=auto_login,
            acr=acr,
            amr=("pwd",) if acr else (),
            token_auth_methods=token_auth_methods,
        ))
        late.target = provider.app
        world = OidcWorld(provider, server, redirect_uri, UpstreamHttp(), Browser())
        worlds.append(world)
        return world

    yield make
    close_worlds(worlds)


@pytest.fixture
def world(make_world: Callable[..., OidcWorld]) -> OidcWorld:
    return make_world()
