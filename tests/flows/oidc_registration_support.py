"""A dynamically registered OpenID Connect app server and signing in through it, shared by the flow tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests

from tests.flows.oidc_peers import RelyingParty
from tests.peers.browser import Browser
from tests.peers.servers import LateApp, RunningServer, serve


@contextmanager
def app_server() -> Iterator[tuple[RunningServer, LateApp]]:
    late = LateApp()
    server = serve(late)
    try:
        yield server, late
    finally:
        server.stop()


def sign_in(browser: Browser, rp: RelyingParty) -> requests.Response:
    page = browser.get(f"{rp.url}/login")
    return browser.auto_submit(page) if browser.is_self_submitting(page) else page
