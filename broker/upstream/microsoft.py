"""Microsoft Entra ID (the Microsoft identity platform, v2.0 endpoints) as an upstream OpenID provider.

Where Entra departs from plain OpenID Connect, and what the broker does about it:

- **Multi-tenant issuer.** The discovery document of the ``common`` and ``organizations`` endpoints (at
  ``{authority}/common/v2.0/.well-known/openid-configuration``) names the issuer
  ``{authority}/{tenantid}/v2.0``: a template, not an issuer. Each ID token's ``iss`` must equal that template
  with the token's own ``tid`` claim put in, after the signature is verified, and ``tid`` must be in the
  operator's allow-list (Microsoft identity platform, ID token claims reference, ``iss``: "Your app should use
  the GUID portion of the claim to restrict the set of tenants that can sign in"). Without an allow-list any
  of the world's tenants could sign in, so ``common``/``organizations`` refuse to start without one.
- **Identity.** ``sub`` is pairwise: the same person gets another ``sub`` in every application. ``oid`` is the
  person's immutable object id in a tenant, the same for every application, and is unique only within the
  tenant ("If a single user exists in multiple tenants, the user contains a different object ID in each
  tenant"; "If you need to share data across services, ``oid`` and ``tid`` is best"). The broker therefore
  keys the person on (``{authority}/{tid}/v2.0``, ``oid``): the tenant issuer and the object id, so a second
  broker app registration, or a move from one registration to another, keeps every linked account.
  ``oid`` needs the ``profile`` scope.
- **E-mail.** ``email`` is mutable and unverified: a tenant administrator can set any address on a user (the
  "nOAuth" account-takeover, Descope 2023; ID token claims reference, ``email``: "This value isn't guaranteed to
  be correct and is mutable over time. Never use it for authorization"). It is ``EmailTrust.MUTABLE`` and
  ``email_verified`` is always reported false, whatever the token or UserInfo says.

Options: ``tenant`` ("common", "organizations" or a tenant id GUID), ``allowed_tenants`` (tenant id GUIDs,
required with ``common``/``organizations``; with a tenant GUID the allow-list is that tenant) and
``authority`` (the cloud's login host, for national clouds; default ``https://login.microsoftonline.com``).
Personal Microsoft accounts sign in through the tenant ``9188040d-6c67-4c5b-b112-36a304b66dad``; list it to
admit them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from broker.core.model import EmailTrust
from broker.upstream.preset_base import OidcPreset, OptionValue, Registration
from broker.upstream.quirks import StandardQuirks, refuse

__all__ = [
    "MICROSOFT", "MicrosoftOptions", "MicrosoftQuirks", "build_microsoft_quirks", "locate_microsoft",
    "microsoft_options", "tenant_issuer",
]

PUBLIC_CLOUD = "https://login.microsoftonline.com"
#: the placeholder in the issuer that Entra's multi-tenant discovery documents name
TENANT_PLACEHOLDER = "{tenantid}"
MULTI_TENANT = frozenset({"common", "organizations"})
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_OPTIONS_HELP: Mapping[str, str] = MappingProxyType({
    "tenant": "required: 'common' or 'organizations' (multi-tenant), or your tenant id (a GUID)",
    "allowed_tenants": "required with common/organizations: the tenant ids (GUIDs) whose people may sign in "
                       "(repeat the option for each)",
    "authority": f"optional: the cloud's login host for national clouds (default {PUBLIC_CLOUD})",
})


def _guid(value: object) -> str | None:
    """A tenant or object id in lowercase, or None when ``value`` is not a GUID."""
    if not isinstance(value, str):
        return None
    lowered = value.lower()
    return lowered if _GUID.match(lowered) else None


def tenant_issuer(template: str, tid: str) -> str:
    """The issuer of one tenant: the template with ``tid`` in place of ``{tenantid}``."""
    return template.replace(TENANT_PLACEHOLDER, tid)


class MicrosoftQuirks(StandardQuirks):
    """Entra ID: tenant allow-list, per-tenant issuer, (``tid``, ``oid``) identity, ``email`` never trusted.

    The configured issuer is either the ``{authority}/{tenantid}/v2.0`` template (multi-tenant) or one
    tenant's issuer; every hook below works with both.
    """

    def __init__(self, allowed_tenants: frozenset[str]) -> None:
        normalized = {_guid(t) for t in allowed_tenants}
        if not allowed_tenants or None in normalized:
            raise ValueError("allowed_tenants must be one or more tenant ids (GUIDs)")
        self.allowed_tenants = frozenset(t for t in normalized if t is not None)

    def _allowed_tid(self, claims: Mapping[str, Any]) -> str:
        """The token's ``tid`` (exactly as sent), refused when absent or not in the allow-list."""
        tid = claims.get("tid")
        if not isinstance(tid, str) or not tid:
            raise refuse("ID token has no tid claim: the tenant cannot be checked")
        if _guid(tid) not in self.allowed_tenants:
            raise refuse(f"ID token tid {tid!r:.60} is not an allowed tenant")
        return tid

    def expected_issuer(self, configured: str, claims: Mapping[str, Any]) -> str:
        """``iss`` must be the template with the token's own ``tid``, an allowed tenant (ID token claims
        reference, ``iss``/``tid``). Called after the signature is verified (OIDC Core 1.0 §3.1.3.7 step 2)."""
        return tenant_issuer(configured, self._allowed_tid(claims))

    def iss_parameter_ok(self, configured: str, iss: str) -> bool:
        """RFC 9207 §2.4: the ``iss`` parameter must be the issuer of an allowed tenant."""
        if TENANT_PLACEHOLDER not in configured:
            return iss == configured
        return any(iss == tenant_issuer(configured, tid) for tid in self.allowed_tenants)

    def check_claims(self, claims: Mapping[str, Any]) -> None:
        """``tid`` in the allow-list (also with a single-tenant issuer) and ``oid`` a GUID: the identity key."""
        self._allowed_tid(claims)
        if _guid(claims.get("oid")) is None:
            raise refuse("ID token has no oid claim (a GUID): the person cannot be identified "
                         "(is 'profile' in the scopes?)")

    def identity_key(self, configured_issuer: str, claims: Mapping[str, Any]) -> tuple[str, str]:
        """(``{authority}/{tid}/v2.0``, ``oid``): the tenant and the person's object id in it, the same for
        every application; ``sub`` is pairwise per application (ID token claims reference, "Use claims to
        reliably identify a user"). The tenant issuer is the same whether the upstream is configured for
        that one tenant or multi-tenant, so switching keeps every linked account."""
        tid = _guid(claims.get("tid"))
        oid = _guid(claims.get("oid"))
        if tid is None or oid is None:  # check_claims refused these already; never key on anything less
            raise refuse("ID token lacks tid or oid")
        return tenant_issuer(configured_issuer, tid), oid

    def profile(self, id_claims: Mapping[str, Any], userinfo: Mapping[str, Any],
                params: Mapping[str, str]) -> dict[str, Any]:
        """``email_verified`` is never true: Entra's ``email`` is unverified and mutable (nOAuth)."""
        merged = super().profile(id_claims, userinfo, params)
        merged.pop("email_verified", None)
        if "email" in merged:
            merged["email_verified"] = False
        return merged

    def email_trust(self, raw: Mapping[str, Any]) -> EmailTrust:
        """ID token claims reference, ``email``: "isn't guaranteed to be correct and is mutable over time"."""
        return EmailTrust.MUTABLE


@dataclass(frozen=True)
class MicrosoftOptions:
    """A Microsoft registration's options, checked."""

    tenant: str
    allowed_tenants: frozenset[str]
    authority: str = PUBLIC_CLOUD

    @property
    def multi_tenant(self) -> bool:
        return self.tenant in MULTI_TENANT

    @property
    def issuer(self) -> str:
        """The template for ``common``/``organizations``, else the tenant's own issuer."""
        return f"{self.authority}/{TENANT_PLACEHOLDER if self.multi_tenant else self.tenant}/v2.0"

    @property
    def discovery_url(self) -> str | None:
        """Multi-tenant: the ``common``/``organizations`` document, which names the template as its issuer."""
        if not self.multi_tenant:
            return None  # {issuer}/.well-known/openid-configuration, OIDC Discovery 1.0 §4
        return f"{self.authority}/{self.tenant}/v2.0/.well-known/openid-configuration"


def microsoft_options(options: Mapping[str, OptionValue], registration: Registration) -> MicrosoftOptions:
    """Check a registration's options; ``ValueError`` names what is wrong."""
    where = f"upstream {registration.name!r}"
    unknown = sorted(set(options) - set(_OPTIONS_HELP))
    if unknown:
        raise ValueError(f"{where}: unknown option(s) {unknown} for Microsoft; known: {sorted(_OPTIONS_HELP)}")
    raw_tenant = options.get("tenant")
    if not isinstance(raw_tenant, str):
        raise ValueError(f"{where}: option tenant is required: 'common', 'organizations' or a tenant id (GUID)")
    tenant = raw_tenant if raw_tenant in MULTI_TENANT else _guid(raw_tenant)
    if tenant is None:
        raise ValueError(f"{where}: option tenant {raw_tenant!r} is not 'common', 'organizations' or a tenant id "
                         "(GUID; a domain name or 'consumers' is not accepted)")
    raw_allowed = options.get("allowed_tenants", ())
    listed = (raw_allowed,) if isinstance(raw_allowed, str) else raw_allowed
    allowed = {_guid(t) for t in listed}
    if None in allowed:
        raise ValueError(f"{where}: option allowed_tenants must list tenant ids (GUIDs), got {list(listed)}")
    if tenant in MULTI_TENANT and not allowed:
        raise ValueError(f"{where}: tenant {tenant!r} lets every Entra tenant in the world sign in; "
                         "option allowed_tenants must name the tenant ids that may")
    if tenant not in MULTI_TENANT and allowed - {tenant}:
        raise ValueError(f"{where}: allowed_tenants is for common/organizations; tenant {tenant!r} admits only "
                         "itself")
    authority = _authority(options.get("authority", PUBLIC_CLOUD), where)
    scopes = registration.scopes
    if scopes is not None and "profile" not in scopes:
        raise ValueError(f"{where}: scopes must include 'profile': Entra sends the oid claim only with it")
    result = MicrosoftOptions(tenant, frozenset(t for t in allowed if t is not None) or frozenset({tenant}),
                              authority)
    if registration.issuer is not None and registration.issuer != result.issuer:
        raise ValueError(f"{where}: issuer {registration.issuer!r} contradicts the options (which give "
                         f"{result.issuer!r}); leave issuer out and set tenant/authority")
    return result


def _authority(value: OptionValue, where: str) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    secure = parts is not None and (
        parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK))
    if parts is None or not secure or not parts.hostname or parts.path.strip("/") or parts.query \
            or parts.fragment or parts.username is not None:
        raise ValueError(f"{where}: option authority {value!r} must be an https URL with a host only, "
                         f"such as {PUBLIC_CLOUD}")
    return f"{parts.scheme}://{parts.netloc}"


def build_microsoft_quirks(options: Mapping[str, OptionValue], registration: Registration) -> MicrosoftQuirks:
    """The preset's ``build_quirks``: the tenant allow-list from the options."""
    return MicrosoftQuirks(microsoft_options(options, registration).allowed_tenants)


def locate_microsoft(options: Mapping[str, OptionValue], registration: Registration) -> tuple[str, str | None]:
    """(issuer, discovery URL) for the options: the settings fields a static preset cannot know."""
    checked = microsoft_options(options, registration)
    return checked.issuer, checked.discovery_url


MICROSOFT = OidcPreset(
    name="microsoft",
    display_name="Microsoft",
    issuer=f"{PUBLIC_CLOUD}/{TENANT_PLACEHOLDER}/v2.0",  # the real one depends on the tenant option
    scopes=("openid", "email", "profile"),  # profile: Entra sends oid only with it
    allowed_algs=("RS256",),
    build_quirks=build_microsoft_quirks,
    options_help=_OPTIONS_HELP,
    locate=locate_microsoft,
)
