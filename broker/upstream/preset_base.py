"""What a preset is: the defaults of one known provider and how its quirks are built from the options.

Apart from ``presets`` so the provider modules (``google``, ``microsoft``, ``apple``) can define their preset
next to their quirks while ``presets`` lists them all: both import this module, never each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from broker.upstream.oidc_settings import DEFAULT_ALGS, DEFAULT_SCOPES
from broker.upstream.quirks import STANDARD, StandardQuirks

OptionValue = str | tuple[str, ...]
#: builds a provider's quirks from the registration's ``options``; ``ValueError`` says what is wrong
QuirksFactory = Callable[[Mapping[str, OptionValue], "Registration"], StandardQuirks]
#: (issuer, discovery URL or None) for a provider whose issuer depends on the options (Microsoft's tenant)
Locator = Callable[[Mapping[str, OptionValue], "Registration"], tuple[str, str | None]]


def no_options(options: Mapping[str, OptionValue], registration: Registration) -> StandardQuirks:
    if options:
        raise ValueError(f"upstream {registration.name!r}: this provider takes no options, got {sorted(options)}")
    return STANDARD


@dataclass(frozen=True)
class OidcPreset:
    """Defaults for one provider, and how its quirks are built from the registration's ``options``.

    ``options_help`` names each option the preset knows (required ones first) for ``broker upstream presets``
    and for the error that a missing one causes. ``locate``, when set, gives the issuer and discovery URL
    from the options (``issuer`` is then only what ``broker upstream presets`` shows).
    """

    name: str
    display_name: str
    issuer: str
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    allowed_algs: tuple[str, ...] = DEFAULT_ALGS
    authorization_params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    build_quirks: QuirksFactory = field(default=no_options, hash=False, compare=False)
    options_help: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    locate: Locator | None = field(default=None, hash=False, compare=False)
    #: the preset makes its own client secret (Apple: a JWT signed with the team's key)
    own_client_secret: bool = False


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
