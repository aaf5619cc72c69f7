"""Known OpenID providers: the defaults an upstream registration may name instead of spelling them out.

A preset fills what the registration leaves out; whatever the registration says explicitly wins. Only
providers that are plain OpenID Connect (discovery, an exact ``iss``, RS256/ES256 ID tokens) belong here;
a provider that needs special handling gets its own adapter instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from broker.upstream.oidc_settings import DEFAULT_ALGS, DEFAULT_SCOPES, OidcUpstreamSettings
from broker.upstream.quirks import STANDARD, StandardQuirks

OptionValue = str | tuple[str, ...]
#: builds a provider's quirks from the registration's ``options``; ``ValueError`` says what is wrong
QuirksFactory = Callable[[Mapping[str, OptionValue], "Registration"], StandardQuirks]


def _no_options(options: Mapping[str, OptionValue], registration: Registration) -> StandardQuirks:
    if options:
        raise ValueError(f"upstream {registration.name!r}: this provider takes no options, got {sorted(options)}")
    return STANDARD


@dataclass(frozen=True)
class OidcPreset:
    """Defaults for one provider, and how its quirks are built from the registration's ``options``.

    ``options_help`` names each option the preset knows (required ones first) for ``broker upstream presets``
    and for the error that a missing one causes.
    """

    name: str
    display_name: str
    issuer: str
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    allowed_algs: tuple[str, ...] = DEFAULT_ALGS
    authorization_params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    build_quirks: QuirksFactory = field(default=_no_options, hash=False, compare=False)
    options_help: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)


GOOGLE = OidcPreset(
    name="google",
    display_name="Google",
    issuer="https://accounts.google.com",  # exactly as in its discovery document
    scopes=("openid", "email", "profile"),
    allowed_algs=("RS256",),
)

PRESETS: Mapping[str, OidcPreset] = MappingProxyType({p.name: p for p in (GOOGLE,)})


class Registration(Protocol):
    """What ``settings_for`` reads from an upstream registration (``broker.registry.UpstreamRegistration``)."""

    @property
    def name(self) -> str: ...
    @property
    def preset(self) -> str | None: ...
    @property
    def display_name(self) -> str | None: ...
    @property
    def issuer(self) -> str | None: ...
    @property
    def client_id(self) -> str: ...
    @property
    def client_secret(self) -> str: ...
    @property
    def scopes(self) -> tuple[str, ...] | None: ...
    @property
    def authorization_params(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def options(self) -> tuple[tuple[str, OptionValue], ...]: ...


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
    issuer = registration.issuer or (base.issuer if base else None)
    if not issuer:
        raise ValueError(f"upstream {registration.name!r} has no issuer and no preset that names one")
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
        quirks=(base.build_quirks if base else _no_options)(dict(registration.options), registration),
    )
