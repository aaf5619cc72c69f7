"""One place that turns an upstream registration into the adapter that speaks to it.

Most providers are OpenID Connect (``OidcUpstream`` with a preset's quirks); a provider that is plain
OAuth 2.0 with its own API (GitHub) has its own adapter. Both have the ``ProviderAdapter`` shape, so
``oauth_upstreams.OAuthUpstreams`` never needs to know which it holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from broker.core.model import LoginRequest, UpstreamIdentity
from broker.upstream import oauth2_settings
from broker.upstream.github import GitHubUpstream
from broker.upstream.http_pool import UpstreamHttp
from broker.upstream.oidc import OidcUpstream
from broker.upstream.oidc_settings import PendingAuthorization
from broker.upstream.presets import PRESETS, Registration, settings_for


class ProviderAdapter(Protocol):
    """Sends the browser to a provider and verifies its answer (see ``OidcUpstream``)."""

    @property
    def name(self) -> str: ...

    #: whether ``start(reauthenticate=True)`` gets an answer that shows a fresh sign-in (``auth_time``)
    proves_fresh_sign_in: bool

    def start(self, now: datetime, login: LoginRequest | None = None,
              reauthenticate: bool = False) -> tuple[str, PendingAuthorization]: ...

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


GITHUB = PresetInfo(
    "github", "GitHub", oauth2_settings.ISSUER, "oauth2",
    {"api_url": "GitHub Enterprise only: its API base URL (default https://api.github.com)",
     "authorize_url": "GitHub Enterprise only: its /login/oauth/authorize URL",
     "token_url": "GitHub Enterprise only: its /login/oauth/access_token URL"},
)


def preset_catalog() -> dict[str, PresetInfo]:
    catalog = {name: PresetInfo(name, p.display_name, p.issuer, "oidc", p.options_help) for name, p in PRESETS.items()}
    return {**catalog, GITHUB.name: GITHUB}


def _is_github(registration: ProtocolRegistration) -> bool:
    """GitHub speaks OAuth 2.0 with its own API, not OpenID Connect; nothing else may claim ``oauth2``."""
    if registration.preset == GITHUB.name or registration.protocol == "oauth2":
        if registration.preset != GITHUB.name or registration.protocol != "oauth2":
            raise ValueError(f"upstream {registration.name!r}: the github preset goes with protocol 'oauth2', "
                             "and 'oauth2' only with the github preset")
        if registration.issuer or registration.authorization_params:
            raise ValueError(f"upstream {registration.name!r}: the github preset takes no issuer or "
                             "authorization_params (use options for GitHub Enterprise)")
        return True
    return False


def describe(registration: ProtocolRegistration) -> tuple[str, str]:
    """(display name, issuer) of a registration; ``ValueError`` when it cannot be used."""
    settings = (oauth2_settings.settings_from(registration, "") if _is_github(registration)
                else settings_for(registration, redirect_uri=""))
    return settings.display_name, settings.issuer


def build_adapter(registration: ProtocolRegistration, redirect_uri: str,
                  session: UpstreamHttp) -> ProviderAdapter:
    """The adapter for ``registration``; ``ValueError`` when it cannot be used."""
    if _is_github(registration):
        return GitHubUpstream(oauth2_settings.settings_from(registration, redirect_uri), session)
    return OidcUpstream(settings_for(registration, redirect_uri=redirect_uri), session)
