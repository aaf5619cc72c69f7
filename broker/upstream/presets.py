"""Known OpenID providers: the defaults an upstream registration may name instead of spelling them out.

A preset fills what the registration leaves out; whatever the registration says explicitly wins. Each
provider module defines its preset next to its quirks (``google.GOOGLE``, ``microsoft.MICROSOFT``); what a
preset is lives in ``preset_base``, which those modules import instead of this one.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from broker.upstream.apple import APPLE
from broker.upstream.google import GOOGLE
from broker.upstream.microsoft import MICROSOFT
from broker.upstream.oidc_settings import DEFAULT_ALGS, DEFAULT_SCOPES, OidcUpstreamSettings
from broker.upstream.preset_base import (
    Locator,
    OidcPreset,
    OptionValue,
    QuirksFactory,
    Registration,
    no_options,
)

__all__ = ["APPLE", "GOOGLE", "MICROSOFT", "PRESETS", "Locator", "OidcPreset", "OptionValue", "QuirksFactory",
           "Registration", "preset", "settings_for"]

PRESETS: Mapping[str, OidcPreset] = MappingProxyType({p.name: p for p in (GOOGLE, MICROSOFT, APPLE)})


def preset(name: str) -> OidcPreset:
    """The preset called ``name``; ``ValueError`` for an unknown one."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}") from None


def settings_for(registration: Registration, *, redirect_uri: str) -> OidcUpstreamSettings:
    """The adapter settings for a registration: its explicit values, else its preset's, else the defaults.

    ``ValueError`` when the result is unusable (unknown preset, no issuer, a forbidden algorithm...).
    """
    base = preset(registration.preset) if registration.preset else None
    options = dict(registration.options)
    located = base.locate(options, registration) if base is not None and base.locate is not None else None
    issuer = registration.issuer or (located[0] if located else None) or (base.issuer if base else None)
    if not issuer:
        raise ValueError(f"upstream {registration.name!r} has no issuer and no preset that names one")
    if not registration.client_secret and not (base is not None and base.own_client_secret):
        raise ValueError(f"upstream {registration.name!r}: client_secret_env or client_secret_file is required")
    params = dict(base.authorization_params) if base else {}
    params.update(registration.authorization_params)
    return OidcUpstreamSettings(
        name=registration.name,
        display_name=registration.display_name or (base.display_name if base else registration.name),
        issuer=issuer,
        client_id=registration.client_id,
        client_secret=registration.client_secret,
        redirect_uri=redirect_uri,
        scopes=registration.scopes or (base.scopes if base else DEFAULT_SCOPES),
        allowed_algs=base.allowed_algs if base else DEFAULT_ALGS,
        extra_authorization_params=MappingProxyType(params),
        preset=base.name if base else None,
        quirks=(base.build_quirks if base else no_options)(options, registration),
        discovery_url=located[1] if located else None,
    )
