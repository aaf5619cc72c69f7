"""Registering apps and upstream identity providers from the operator console and the admin API (issue 19), as
the journeys see it.

The port ``PartyRegistrations`` is the registration service of ``broker.registry`` (the one ``broker sp`` and
``broker client`` use): a preview validates the submitted document exactly as the registry will load it and
compares it with the current registration; applying validates it again against the folder as it is then and
writes the same files an integrator would drop into ``metadata/``. Nothing here parses XML or JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

#: the most bytes of metadata or client JSON a person may submit
MAX_DOCUMENT = 1_000_000


class AppKind(StrEnum):
    SAML = "saml"  # a SAML service provider: its metadata XML and the operator's settings
    OIDC = "oidc"  # an OpenID Connect client: its RFC 7591 §2 client metadata JSON
    #: an upstream identity provider (OpenID Connect, OAuth 2.0 by a preset, or a SAML IdP by entity id): its
    #: registration JSON, ``metadata/upstreams/<name>.json`` (README "Registering parties"); never a secret
    UPSTREAM = "upstream"


#: the operator's settings of a SAML app that may be edited (``broker sp set``; README "Registering parties")
SAML_SETTINGS = ("display_name", "logo_uri", "policy_uri", "allowed_upstreams", "default_upstream", "required_acr",
                 "receive", "required")


@dataclass(frozen=True)
class Change:
    """One difference between the current registration of ``party`` and the proposed one, in readable text:
    ``before`` is None for what is added, ``after`` None for what is removed."""

    party: str
    field: str
    before: str | None
    after: str | None

    def __str__(self) -> str:
        return f"{self.party}  {self.field}: {self.before or '-'} -> {self.after or '-'}"


@dataclass(frozen=True)
class AppPreview:
    """What registering a submitted document would do.

    ``problems``: why the registry would not load it, or why it clashes with another registration (then it
    cannot be applied); ``changes`` against the current registration (all additions for a new app);
    ``facts``: what the broker read from it, as (label, value) pairs for a person to check (endpoints,
    certificate fingerprints and expiry, requested attributes)."""

    kind: AppKind
    party_ids: tuple[str, ...]
    file: str
    problems: tuple[str, ...]
    changes: tuple[Change, ...]
    facts: tuple[tuple[str, str], ...] = ()
    #: the app is registered today (applying replaces its registration)
    replaces: bool = False
    #: the admin API scopes (``core.admin_scopes``) an OpenID client would be registered for
    admin_scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class AppApplied:
    """An applied registration; ``client_secret`` is a new OpenID client's secret, shown once, stored nowhere
    but as its hash."""

    preview: AppPreview
    client_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AppEntry:
    kind: AppKind
    party_id: str
    display_name: str
    file: str
    enabled: bool = True


class RegistrationRefused(ValueError):
    """Nothing was written: the document would not load, clashes, or names no registered app."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


class PartyRegistrations(Protocol):
    def apps(self) -> Sequence[AppEntry]:
        """Every registered app, SAML and OpenID, disabled ones included, and every upstream, by kind and id."""
        ...

    def preview(self, kind: AppKind, document: bytes, settings: Mapping[str, object]) -> AppPreview:
        """Validate ``document`` (SAML metadata, client metadata JSON, an upstream's registration JSON) with the
        operator's ``settings`` (SAML only: display name, allowed upstreams, released claims, required acr...);
        never raises."""
        ...

    def apply(self, kind: AppKind, document: bytes, settings: Mapping[str, object]) -> AppApplied:
        """Preview again and write; ``RegistrationRefused`` with nothing written when it has problems."""
        ...

    def set_enabled(self, kind: AppKind, party_id: str, enabled: bool) -> AppPreview:
        """Serve or stop serving a registered SAML app (its registration stays); ``RegistrationRefused`` for
        anything else (an upstream has no such switch: it is removed)."""
        ...

    def settings(self, kind: AppKind, party_id: str) -> Mapping[str, object]:
        """A registered SAML app's operator settings as written (``SAML_SETTINGS`` only); ``RegistrationRefused``
        when there is no such app."""
        ...

    def preview_settings(self, kind: AppKind, party_id: str, settings: Mapping[str, object],
                         clear: Sequence[str]) -> AppPreview:
        """The app with its settings changed as ``broker sp set`` changes them: ``clear`` removed, then
        ``settings`` set, the others kept; validated with its metadata as the registry will load them, with the
        diff; never raises (an unknown app is a problem)."""
        ...

    def apply_settings(self, kind: AppKind, party_id: str, settings: Mapping[str, object],
                       clear: Sequence[str]) -> AppPreview:
        """Preview the settings again and write them; ``RegistrationRefused`` with nothing written."""
        ...

    def remove(self, kind: AppKind, party_id: str) -> None:
        """Delete the app's registration; ``RegistrationRefused`` when none."""
        ...
