"""A demo OpenID provider on 127.0.0.1 and a callback endpoint, for the peers' own tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from broker.demo.oidc_provider import (
    DemoClient,
    DemoProvider,
    DemoProviderSettings,
    DemoUser,
    create_demo_provider,
)
from tests.peers.browser import Browser
from tests.peers.servers import LateApp, RunningServer, serve

CLIENT_ID = "standard-client"
CLIENT_SECRET = "standard-secret"
BOB = DemoUser("bob", "bobs password", {
    "sub": "bob-42", "email": "bob@example.org", "email_verified": False, "given_name": "Bob",
    "family_name": "Builder", "name": "Bob Builder",
})


@dataclass
class Peer:
    provider: DemoProvider
    server: RunningServer
    redirect_uri: str


@pytest.fixture(scope="session")
def callback_server() -> Iterator[RunningServer]:
    app = Flask("callback")

    @app.get("/cb")
    def callback() -> ResponseReturnValue:
        return jsonify(request.args.to_dict())

    with serve(app) as server:
        yield server


def start_peer(callback_server: RunningServer, auto_login: str | None, path: str = "") -> Peer:
    late = LateApp()
    server = serve(late)
    redirect_uri = callback_server.url + "/cb"
    provider = create_demo_provider(DemoProviderSettings(
        issuer=server.url + path,
        clients=(DemoClient(CLIENT_ID, CLIENT_SECRET, (redirect_uri,)),),
        users=(BOB,),
        auto_login=auto_login,
        acr="urn:example:demo",
    ))
    late.target = provider.app
    return Peer(provider, server, redirect_uri)


@pytest.fixture
def peer(callback_server: RunningServer) -> Iterator[Peer]:
    started = start_peer(callback_server, auto_login="bob")
    yield started
    started.server.stop()


@pytest.fixture
def interactive_peer(callback_server: RunningServer) -> Iterator[Peer]:
    started = start_peer(callback_server, auto_login=None, path="/op")
    yield started
    started.server.stop()


@pytest.fixture
def browser() -> Iterator[Browser]:
    with Browser() as opened:
        yield opened
