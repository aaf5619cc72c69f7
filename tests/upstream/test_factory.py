"""The factory picks the adapter a registration needs, and refuses registrations that mix protocols."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.registry import UpstreamRegistration, parse_registration
from broker.upstream.factory import build_adapter, describe, preset_catalog
from broker.upstream.github import GitHubUpstream
from broker.upstream.http_pool import UpstreamHttp
from broker.upstream.oidc import OidcUpstream

ENV = {"SECRET": "s3cret"}


def _registration(**fields: object) -> UpstreamRegistration:
    raw = {"name": "up", "client_id": "client", "client_secret_env": "SECRET", **fields}
    return parse_registration(raw, Path("."), ENV)


def test_github_preset_gets_the_github_adapter_with_its_own_issuer() -> None:
    registration = _registration(preset="github", protocol="oauth2")
    adapter = build_adapter(registration, "https://broker.example/cb", UpstreamHttp())
    assert isinstance(adapter, GitHubUpstream)
    assert describe(registration) == ("GitHub", "https://github.com")


def test_openid_providers_get_the_oidc_adapter() -> None:
    registration = _registration(preset="google")
    adapter = build_adapter(registration, "https://broker.example/cb", UpstreamHttp())
    assert isinstance(adapter, OidcUpstream)
    assert describe(registration)[1] == "https://accounts.google.com"


@pytest.mark.parametrize("fields", [
    {"preset": "github"},  # github is not OpenID Connect
    {"protocol": "oauth2", "issuer": "https://idp.example.org"},  # plain OAuth 2.0 has no identity without a preset
    {"preset": "github", "protocol": "oauth2", "issuer": "https://evil.example.org"},
])
def test_mixed_protocols_are_refused(fields: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"github|oauth2"):
        describe(_registration(**fields))


def test_catalog_lists_every_preset_with_its_protocol() -> None:
    catalog = preset_catalog()
    assert catalog["github"].protocol == "oauth2"
    assert catalog["google"].protocol == "oidc"
