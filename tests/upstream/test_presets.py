"""Presets fill what a registration leaves out; what it says explicitly wins."""

from __future__ import annotations

import pytest

from broker.upstream.presets import GOOGLE, PRESETS, settings_for
from tests.upstream.support import Registration


def test_google_preset_defaults() -> None:
    settings = settings_for(Registration(), redirect_uri="https://broker.example/upstream/oidc/google/callback")
    assert PRESETS["google"] is GOOGLE
    assert settings.issuer == "https://accounts.google.com"
    assert settings.display_name == "Google"
    assert settings.scopes == ("openid", "email", "profile")
    assert settings.preset == "google"
    assert settings.client_id == "1234.apps.googleusercontent.com"
    assert "none" not in settings.allowed_algs


def test_explicit_settings_override_the_preset() -> None:
    settings = settings_for(
        Registration(display_name="Sign in with Google", scopes=("openid", "email"),
                     authorization_params=(("hd", "example.org"),)),
        redirect_uri="",
    )
    assert settings.display_name == "Sign in with Google"
    assert settings.scopes == ("openid", "email")
    assert dict(settings.extra_authorization_params) == {"hd": "example.org"}


def test_no_preset_needs_an_issuer() -> None:
    with pytest.raises(ValueError, match="no issuer"):
        settings_for(Registration(name="city", preset=None), redirect_uri="")
    settings = settings_for(Registration(name="city", preset=None, issuer="https://login.city.example"),
                            redirect_uri="")
    assert settings.display_name == "city"
    assert settings.preset is None


def test_unknown_preset() -> None:
    with pytest.raises(ValueError, match="unknown preset"):
        settings_for(Registration(preset="nope"), redirect_uri="")


def test_openid_scope_is_required() -> None:
    with pytest.raises(ValueError, match="openid"):
        settings_for(Registration(scopes=("email",)), redirect_uri="")


def test_microsoft_preset_locates_issuer_and_discovery_from_its_options() -> None:
    tenant = "aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa"
    common = settings_for(Registration(name="entra", preset="microsoft", options=(
        ("allowed_tenants", (tenant,)), ("tenant", "common"))), redirect_uri="")
    assert common.issuer == "https://login.microsoftonline.com/{tenantid}/v2.0"
    assert common.discovery_url == "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration"
    assert common.display_name == "Microsoft"
    single = settings_for(Registration(name="entra", preset="microsoft", options=(("tenant", tenant),)),
                          redirect_uri="")
    assert (single.issuer, single.discovery_url) == (f"https://login.microsoftonline.com/{tenant}/v2.0", None)
    with pytest.raises(ValueError, match="allowed_tenants"):
        settings_for(Registration(name="entra", preset="microsoft", options=(("tenant", "common"),)),
                     redirect_uri="")


def test_google_preset_takes_hosted_domain_and_nothing_else() -> None:
    settings = settings_for(Registration(options=(("hosted_domain", "example.org"),)), redirect_uri="")
    assert dict(settings.quirks.authorization_params()) == {"hd": "example.org"}
    assert settings.discovery_url is None
    with pytest.raises(ValueError, match="unknown option"):
        settings_for(Registration(options=(("team_id", "x"),)), redirect_uri="")
