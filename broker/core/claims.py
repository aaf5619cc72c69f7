"""The broker's claim vocabulary and the one table that maps it to each protocol's names.

OIDC names follow OpenID Connect Core 1.0 §5.1 (standard claims) and §5.4 (scopes). SAML names are the
LDAP/X.500 attribute OIDs of the eduPerson / inetOrgPerson schemas in the ``urn:oid:`` form required by the
SAML V2.0 X.500/LDAP Attribute Profile (NameFormat ``...:attrname-format:uri``), with their friendly names
for SPs that use ``...:attrname-format:basic``.

Upstream SAML IdPs name the same things in other vocabularies too; each claim lists those names as
``saml_aliases``, accepted inbound only (the broker always answers with ``saml_uri``/``saml_friendly``):
the eIDAS natural-person attributes (eIDAS SAML Attribute Profile v1.2 §2.2: ``PersonIdentifier``,
``CurrentFamilyName``, ``CurrentGivenName``, ``DateOfBirth``), SCHAC (``schacDateOfBirth``,
``schacPersonalUniqueID``), PKCS #9 ``emailAddress``, ``cn``, ``mobile``, and the claim URIs of AD FS.

Claims of the broker's own (not in OIDC Core §5.1 nor an LDAP schema) have a private OIDC claim name (OIDC Core
§5.1.2; "Claims ... that are not understood MUST be ignored", §2) and a SAML attribute named under
``BROKER_ATTRIBUTE_NS`` with NameFormat uri. ``email_relay`` is one: whether the released e-mail address is a
private relay address (Apple's "Hide My Email", ``is_private_email``), which delivers mail but is unique to one
service, so an app must not match it to other accounts by address.

Two claims are multi-valued (``ClaimKind.LIST``, a tuple of texts; several SAML AttributeValues, a JSON array):

- ``groups``: the groups an upstream says the person is in (OIDC ``groups``, e.g. Microsoft Entra group object
  ids; SAML ``isMemberOf``, urn:oid:1.3.6.1.4.1.5923.1.5.1.1 of the eduPerson schema (eduPerson 201602 §2.2.8),
  Active Directory ``memberOf`` and the AD FS groups claim). They feed the operator's role mappings
  (``core.app_roles``); an app receives them only when it asks by name (the ``claims`` parameter, a
  RequestedAttribute) and ``release_claims`` lists them, which it does not by default. eduPersonEntitlement
  names rights, not groups, and is not read as one.
- ``roles``: the roles the operator gave the person *in the receiving app* (``core.app_roles``), assigned by the
  broker and never read from an upstream (``BROKER_ASSIGNED``): an upstream's own ``roles`` claim or roles
  attribute is dropped. OIDC: the claim ``roles`` by the ``roles`` scope or the ``claims`` parameter; SAML:
  ``urn:civic-broker:attribute:roles`` (FriendlyName ``roles``).

A list keeps at most ``MAX_VALUES`` values of at most ``MAX_VALUE_LENGTH`` characters each (longer ones are
dropped, never cut: a cut group id could equal another group's); Entra sends at most 200 groups in a token
before it switches to an overage reference (``_claim_names``), which the broker does not follow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from broker.core.texts import N_

NAMEFORMAT_URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
NAMEFORMAT_BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
NAMEFORMAT_UNSPECIFIED = "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"

ClaimValue = str | bool | int | Mapping[str, str] | tuple[str, ...]
_EIDAS = "http://eidas.europa.eu/attributes/naturalperson/"
_ADFS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")  # schacDateOfBirth: YYYYMMDD
#: the namespace of the broker's own SAML attribute names (the project has no registered URN namespace or OID
#: arc; should it get one, names under this prefix stay accepted as aliases)
BROKER_ATTRIBUTE_NS = "urn:civic-broker:attribute:"
_AD_GROUPS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
#: the most values a multi-valued claim keeps, and the longest value
MAX_VALUES = 250
MAX_VALUE_LENGTH = 256


class ClaimKind(Enum):
    STRING = "string"
    BOOLEAN = "boolean"
    DATE = "date"  # ISO 8601 YYYY-MM-DD (OIDC Core §5.1 birthdate)
    ADDRESS = "address"  # OIDC Core §5.1.1 address structure
    LIST = "list"  # several texts: a JSON array (OIDC Core §5.1 allows any JSON value), SAML AttributeValues


@dataclass(frozen=True)
class Claim:
    """One claim of the vocabulary and its names in each protocol."""

    name: str
    kind: ClaimKind
    oidc_name: str | None
    oidc_scope: str | None
    saml_uri: str | None
    saml_friendly: str | None
    description: str
    #: other SAML attribute names (and friendly names) an upstream may use for this claim; inbound only
    saml_aliases: tuple[str, ...] = ()


CLAIMS: tuple[Claim, ...] = (
    Claim("email", ClaimKind.STRING, "email", "email",
          "urn:oid:0.9.2342.19200300.100.1.3", "mail", N_("e-mail address"),
          ("urn:oid:1.2.840.113549.1.9.1", "emailAddress", "email", _ADFS + "emailaddress")),
    Claim("email_verified", ClaimKind.BOOLEAN, "email_verified", "email", None, None,
          N_("whether the upstream verified the e-mail address")),
    # Released only to apps that ask for it by name: the OIDC ``claims`` parameter (OIDC Core §5.5) or a SAML
    # RequestedAttribute; never by a scope, so no app's tokens change unasked. It travels with ``email``.
    Claim("email_relay", ClaimKind.BOOLEAN, "email_relay", None, BROKER_ATTRIBUTE_NS + "email_relay", "emailRelay",
          N_("whether the e-mail address is a private relay address (Apple Hide My Email)")),
    Claim("given_name", ClaimKind.STRING, "given_name", "profile", "urn:oid:2.5.4.42", "givenName", N_("first name"),
          (_EIDAS + "CurrentGivenName", "FirstName", _ADFS + "givenname")),
    Claim("family_name", ClaimKind.STRING, "family_name", "profile", "urn:oid:2.5.4.4", "sn", N_("last name"),
          (_EIDAS + "CurrentFamilyName", "FamilyName", "surname", _ADFS + "surname")),
    Claim("name", ClaimKind.STRING, "name", "profile",
          "urn:oid:2.16.840.1.113730.3.1.241", "displayName", N_("full name for display"),
          ("urn:oid:2.5.4.3", "cn", _ADFS + "name")),
    Claim("preferred_username", ClaimKind.STRING, "preferred_username", "profile",
          "urn:oid:0.9.2342.19200300.100.1.1", "uid", N_("user name at the upstream")),
    Claim("birthdate", ClaimKind.DATE, "birthdate", "profile",
          "urn:oid:1.3.6.1.5.5.7.9.1", "dateOfBirth", N_("date of birth"),
          (_EIDAS + "DateOfBirth", "DateOfBirth", "urn:oid:1.3.6.1.4.1.25178.1.2.3", "schacDateOfBirth")),
    Claim("locale", ClaimKind.STRING, "locale", "profile",
          "urn:oid:2.16.840.1.113730.3.1.39", "preferredLanguage", N_("preferred language")),
    Claim("phone_number", ClaimKind.STRING, "phone_number", "phone",
          "urn:oid:2.5.4.20", "telephoneNumber", N_("telephone number"),
          ("urn:oid:0.9.2342.19200300.100.1.41", "mobile", _ADFS + "mobilephone")),
    Claim("phone_number_verified", ClaimKind.BOOLEAN, "phone_number_verified", "phone", None, None,
          N_("whether the upstream verified the telephone number")),
    Claim("address", ClaimKind.ADDRESS, "address", "address",
          "urn:oid:2.5.4.16", "postalAddress", N_("postal address")),
    # A national or eIDAS identifier of the person: sent only to apps the release policy allows it.
    Claim("person_identifier", ClaimKind.STRING, "person_identifier", None,
          _EIDAS + "PersonIdentifier", "PersonIdentifier", N_("unique identifier of the person (eIDAS)"),
          ("urn:oid:1.3.6.1.4.1.25178.1.2.15", "schacPersonalUniqueID")),
    # Never by a scope: an app asks for groups by name, and release_claims must list them (module docstring).
    Claim("groups", ClaimKind.LIST, "groups", None, "urn:oid:1.3.6.1.4.1.5923.1.5.1.1", "isMemberOf",
          N_("groups you belong to at the provider you signed in with"),
          ("urn:oid:1.2.840.113556.1.2.102", "memberOf", _AD_GROUPS)),
    # The operator's roles for the receiving app only (core.app_roles); assigned by the broker, never upstream.
    Claim("roles", ClaimKind.LIST, "roles", "roles", BROKER_ATTRIBUTE_NS + "roles", "roles",
          N_("your roles in this app")),
)

#: claims the broker assigns itself: an upstream never asserts them (its adapters drop them, the profile skips them)
BROKER_ASSIGNED = frozenset({"roles"})

BY_NAME: Mapping[str, Claim] = {c.name: c for c in CLAIMS}
_BY_OIDC: Mapping[str, Claim] = {c.oidc_name: c for c in CLAIMS if c.oidc_name}
_BY_SAML: Mapping[str, Claim] = {
    **{alias: c for c in CLAIMS for alias in c.saml_aliases},
    **{c.saml_uri: c for c in CLAIMS if c.saml_uri},
    **{c.saml_friendly: c for c in CLAIMS if c.saml_friendly},
}


def claim(name: str) -> Claim:
    """The claim called ``name``; ``KeyError`` for a name outside the vocabulary."""
    return BY_NAME[name]


def from_oidc_name(oidc_name: str) -> Claim | None:
    return _BY_OIDC.get(oidc_name)


def from_saml_name(name: str, friendly_name: str | None = None) -> Claim | None:
    """Map a SAML attribute (by ``Name``, falling back to ``FriendlyName``) to a claim."""
    found = _BY_SAML.get(name)
    if found is None and friendly_name:
        found = _BY_SAML.get(friendly_name)
    return found


def from_upstream_oidc_name(oidc_name: str) -> Claim | None:
    """The claim an upstream's OIDC claim ``oidc_name`` asserts; None outside the vocabulary or when the broker
    assigns that claim itself (``BROKER_ASSIGNED``)."""
    found = _BY_OIDC.get(oidc_name)
    return found if found is not None and found.name not in BROKER_ASSIGNED else None


def from_upstream_saml_name(name: str, friendly_name: str | None = None) -> Claim | None:
    """``from_saml_name`` for an upstream's assertion: never a claim the broker assigns itself."""
    found = from_saml_name(name, friendly_name)
    return found if found is not None and found.name not in BROKER_ASSIGNED else None


def claims_for_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """Claims that the OIDC scopes ``profile``/``email``/``address``/``phone`` request (OIDC Core §5.4), and the
    broker's ``roles`` scope (the ``roles`` claim)."""
    wanted = set(scopes)
    return frozenset(c.name for c in CLAIMS if c.oidc_scope in wanted)


def coerce(claim_def: Claim, value: object) -> ClaimValue | None:
    """Normalize an upstream value to the claim's kind; ``None`` when it cannot be trusted as that kind.

    Booleans arrive as ``true``/``"true"`` (Apple sends strings); anything else is not a boolean. A list
    (``ClaimKind.LIST``) takes one text or a list of texts (``texts``).
    """
    if claim_def.kind is ClaimKind.LIST:
        return texts(value)
    if claim_def.kind is ClaimKind.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return None
    if claim_def.kind is ClaimKind.ADDRESS:
        if isinstance(value, Mapping):
            return {str(k): str(v) for k, v in value.items() if isinstance(v, str | int)}
        if isinstance(value, str) and value:
            return {"formatted": value}
        return None
    if isinstance(value, str | int) and not isinstance(value, bool):
        text = str(value).strip()
        if claim_def.kind is ClaimKind.DATE and (compact := _COMPACT_DATE.fullmatch(text)):
            text = "-".join(compact.groups())  # OIDC Core §5.1: YYYY-MM-DD
        return text or None
    return None


def texts(value: object) -> tuple[str, ...] | None:
    """A multi-valued claim's values: texts, stripped, each once in the order given; values that are not texts,
    empty or longer than ``MAX_VALUE_LENGTH`` are dropped, and at most ``MAX_VALUES`` kept. None when none is left."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list | tuple) else []
    kept: dict[str, None] = {}
    for item in items:
        if isinstance(item, str) and (text := item.strip()) and len(text) <= MAX_VALUE_LENGTH:
            kept.setdefault(text)
            if len(kept) == MAX_VALUES:
                break
    return tuple(kept) or None


def as_text(value: ClaimValue) -> str:
    """One string for protocols that carry only strings (SAML AttributeValue); a list's values comma-separated
    (for display; SAML sends each as its own AttributeValue, ``as_texts``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ", ".join(value)
    if isinstance(value, Mapping):
        return value.get("formatted") or "\n".join(v for v in value.values() if v)
    return str(value)


def as_texts(value: ClaimValue) -> list[str]:
    """The SAML AttributeValues of a claim: one per value of a list, else one."""
    return list(value) if isinstance(value, tuple) else [as_text(value)]


#: a verification flag belongs to the value it vouches for; the two are asserted and kept together
VERIFICATION_OF: Mapping[str, str] = {"email_verified": "email", "phone_number_verified": "phone_number"}
#: claims that describe another claim's value (its verification flag, whether an address is a relay address):
#: each comes from the identity that asserted the value, is consented to with it, and goes out only with it
DESCRIBES: Mapping[str, str] = {**VERIFICATION_OF, "email_relay": "email"}


def merge_assertions(before: Mapping[str, ClaimValue], now: Mapping[str, ClaimValue],
                     sent_once: frozenset[str] = frozenset()) -> dict[str, ClaimValue]:
    """What an identity has asserted after this login: the values of ``now``.

    A claim omitted now is dropped, except those the upstream sends only once (``sent_once``: Apple sends
    the person's name only on the first authorization), which keep their earlier value. A value and what
    describes it (``DESCRIBES``) are one unit: when either is asserted now, neither is taken from ``before``,
    so an old ``email_verified: true`` can never vouch for a changed e-mail address.
    """
    merged = {name: value for name, value in before.items() if name in sent_once and name not in now}
    for flag, value in DESCRIBES.items():
        if flag in now or value in now:
            merged.pop(flag, None)
            merged.pop(value, None)
    merged.update(now)
    return merged
