"""One place that turns an upstream registration into the adapter that speaks to it.

Most providers are OpenID Connect (``OidcUpstream`` with a preset's quirks); a provider that is plain
OAuth 2.0 with its own API (GitHub) has its own adapter. Both have the ``UpstreamAdapter`` shape, so the
web layer never needs to know which it holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import requests

from broker.core.model import UpstreamIdentity
from broker.upstream.oidc import OidcUpstream
from broker.upstream.oidc_settings import PendingAuthorization
from broker.upstream.presets import PRESETS, Registration, settings_for


class UpstreamAdapter(Protocol):
    """Sends the browser to a provider and verifies its answer (see ``OidcUpstream``)."""

    @property
    def name(self) -> str: ...

    def start(self, now: datetime) -> tuple[str, PendingAuthorization]: ...

    def finish(self, pending: PendingAuthorization, params: Mapping[str, str], now: datetime) -> UpstreamIdentity:
        ...


class ProtocolRegistration(Registration, Protocol):
    @property
    def protocol(self) -> str: ...


@dataclass(frozen=True)
class PresetInfo:
    """What ``broker upstream presets`` shows: what a preset fills in and which options it needs."""

    name: str
    display_name: str
    issuer: str
    protocol: str
    options_help: Mapping[str, str]


def preset_catalog() -> dict[str, PresetInfo]:
    return {name: PresetInfo(name, p.display_name, p.issuer, "oidc", p.options_help) for name, p in PRESETS.items()}


def describe(registration: ProtocolRegistration) -> tuple[str, str]:
    """(display name, issuer) of a registration; ``ValueError`` when it cannot be used."""
    settings = settings_for(registration, redirect_uri="")
    return settings.display_name, settings.issuer


def build_adapter(registration: ProtocolRegistration, redirect_uri: str,
                  session: requests.Session) -> UpstreamAdapter:
    """The adapter for ``registration``; ``ValueError`` when it cannot be used."""
    return OidcUpstream(settings_for(registration, redirect_uri=redirect_uri), session)
