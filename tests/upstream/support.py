"""Shared by the upstream tests: a registration stand-in and the teardown of served test worlds."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from broker.upstream.http_pool import UpstreamHttp
from broker.upstream.presets import OptionValue
from tests.peers.browser import Browser


@dataclass(frozen=True)
class Registration:
    """What ``presets.settings_for`` reads (the shape of ``broker.registry.UpstreamRegistration``)."""

    name: str = "google"
    preset: str | None = "google"
    display_name: str | None = None
    issuer: str | None = None
    client_id: str = "1234.apps.googleusercontent.com"
    client_secret: str = "secret"
    scopes: tuple[str, ...] | None = None
    authorization_params: tuple[tuple[str, str], ...] = ()
    options: tuple[tuple[str, OptionValue], ...] = ()


class _Served(Protocol):
    def stop(self) -> None: ...


class World(Protocol):
    """A provider served for one test, with the browser and HTTP client that talk to it."""

    @property
    def browser(self) -> Browser: ...
    @property
    def http(self) -> UpstreamHttp: ...
    @property
    def server(self) -> _Served: ...


def close_worlds(worlds: Iterable[World]) -> None:
    for world in worlds:
        world.browser.close()
        world.http.close()
        world.server.stop()
