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
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

NAMEFORMAT_URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
NAMEFORMAT_BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
NAMEFORMAT_UNSPECIFIED = "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"

ClaimValue = str | bool | int | Mapping[str, str]
_EIDAS = "http://eidas.europa.eu/attributes/naturalperson/"
_ADFS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")  # schacDateOfBirth: YYYYMMDD
#: the namespace of the broker's own SAML attribute names (the project has no registered URN namespace or OID
#: arc; should it get one, names under this prefix stay accepted as aliases)
BROKER_ATTRIBUTE_NS = "urn:civic-broker:attribute:"


class ClaimKind(Enum):
    STRING = "string"
    BOOLEAN = "boolean"
    DATE = "date"  # ISO 8601 YYYY-MM-DD (OIDC Core §5.1 birthdate)
    ADDRESS = "address"  # OIDC Core §5.1.1 address structure


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
          "urn:oid:0.9.2342.19200300.100.1.3", "mail", "e-mail address",
          ("urn:oid:1.2.840.113549.1.9.1", "emailAddress", "email", _ADFS + "emailaddress")),
    Claim("email_verified", ClaimKind.BOOLEAN, "email_verified", "email", None, None,
          "whether the upstream verified the e-mail address"),
    # Released only to apps that ask for it by name: the OIDC ``claims`` parameter (OIDC Core §5.5) or a SAML
    # RequestedAttribute; never by a scope, so no app's tokens change unasked. It travels with ``email``.
    Claim("email_relay", ClaimKind.BOOLEAN, "email_relay", None, BROKER_ATTRIBUTE_NS + "email_relay", "emailRelay",
          "whether the e-mail address is a private relay address (Apple Hide My Email)"),
    Claim("given_name", ClaimKind.STRING, "given_name", "profile", "urn:oid:2.5.4.42", "givenName", "first name",
          (_EIDAS + "CurrentGivenName", "FirstName", _ADFS + "givenname")),
    Claim("family_name", ClaimKind.STRING, "family_name", "profile", "urn:oid:2.5.4.4", "sn", "last name",
          (_EIDAS + "CurrentFamilyName", "FamilyName", "surname", _ADFS + "surname")),
    Claim("name", ClaimKind.STRING, "name", "profile",
          "urn:oid:2.16.840.1.113730.3.1.241", "displayName", "full name for display",
          ("urn:oid:2.5.4.3", "cn", _ADFS + "name")),
    Claim("preferred_username", ClaimKind.STRING, "preferred_username", "profile",
          "urn:oid:0.9.2342.19200300.100.1.1", "uid", "user name at the upstream"),
    Claim("birthdate", ClaimKind.DATE, "birthdate", "profile",
          "urn:oid:1.3.6.1.5.5.7.9.1", "dateOfBirth", "date of birth",
          (_EIDAS + "DateOfBirth", "DateOfBirth", "urn:oid:1.3.6.1.4.1.25178.1.2.3", "schacDateOfBirth")),
    Claim("locale", ClaimKind.STRING, "locale", "profile",
          "urn:oid:2.16.840.1.113730.3.1.39", "preferredLanguage", "preferred language"),
    Claim("phone_number", ClaimKind.STRING, "phone_number", "phone",
          "urn:oid:2.5.4.20", "telephoneNumber", "telephone number",
          ("urn:oid:0.9.2342.19200300.100.1.41", "mobile", _ADFS + "mobilephone")),
    Claim("phone_number_verified", ClaimKind.BOOLEAN, "phone_number_verified", "phone", None, None,
          "whether the upstream verified the telephone number"),
    Claim("address", ClaimKind.ADDRESS, "address", "address",
          "urn:oid:2.5.4.16", "postalAddress", "postal address"),
    # A national or eIDAS identifier of the person: sent only to apps the release policy allows it.
    Claim("person_identifier", ClaimKind.STRING, "person_identifier", None,
          _EIDAS + "PersonIdentifier", "PersonIdentifier", "unique identifier of the person (eIDAS)",
          ("urn:oid:1.3.6.1.4.1.25178.1.2.15", "schacPersonalUniqueID")),
)

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


def claims_for_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """Claims that the OIDC scopes ``profile``/``email``/``address``/``phone`` request (OIDC Core §5.4)."""
    wanted = set(scopes)
    return frozenset(c.name for c in CLAIMS if c.oidc_scope in wanted)


def coerce(claim_def: Claim, value: object) -> ClaimValue | None:
    """Normalize an upstream value to the claim's kind; ``None`` when it cannot be trusted as that kind.

    Booleans arrive as ``true``/``"true"`` (Apple sends strings); anything else is not a boolean.
    """
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


def as_text(value: ClaimValue) -> str:
    """One string for protocols that carry only strings (SAML AttributeValue)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return value.get("formatted") or "\n".join(v for v in value.values() if v)
    return str(value)


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
