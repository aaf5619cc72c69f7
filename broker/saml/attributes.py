"""pysaml2 attribute converters generated from the broker's one claim table (``core.claims``).

Attributes go out under their friendly name (``mail``) as the local name; the converter for
``attrname-format:uri`` turns it into ``urn:oid:0.9.2342.19200300.100.1.3`` with FriendlyName ``mail``
(SAML V2.0 X.500/LDAP Attribute Profile §2.3); the one for ``attrname-format:basic`` keeps the
friendly name as the Name, for legacy SPs that ask for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from saml2.attribute_converter import AttributeConverter

from broker.core.claims import CLAIMS, NAMEFORMAT_BASIC, NAMEFORMAT_URI, ClaimValue, as_texts, from_saml_name


def converters() -> list[Any]:
    """Fresh converters for a pysaml2 config (``attribute_converters``)."""
    named = [c for c in CLAIMS if c.saml_uri and c.saml_friendly]
    # Both directions are given: pysaml2 derives a missing one from lower-cased keys, which would turn
    # ``givenName`` into ``givenname`` for the SPs and for us.
    uri = AttributeConverter(NAMEFORMAT_URI)
    uri.from_dict({
        "identifier": NAMEFORMAT_URI,
        "to": {c.saml_friendly: c.saml_uri for c in named},
        "fro": {c.saml_uri: c.saml_friendly for c in named},
    })
    basic = AttributeConverter(NAMEFORMAT_BASIC)
    basic.from_dict({
        "identifier": NAMEFORMAT_BASIC,
        "to": {c.saml_friendly: c.saml_friendly for c in named},
        "fro": {c.saml_friendly: c.saml_friendly for c in named},
    })
    return [uri, basic]


def to_ava(released: Mapping[str, ClaimValue]) -> dict[str, list[str]]:
    """Released claims as pysaml2's attribute-value assertion, keyed by friendly name; a multi-valued claim (roles)
    is one attribute with one AttributeValue per value (SAML Core §2.7.3.1)."""
    ava: dict[str, list[str]] = {}
    for claim in CLAIMS:
        if claim.name in released and claim.saml_friendly:
            ava[claim.saml_friendly] = as_texts(released[claim.name])
    return ava


def claims_named(attributes: Iterable[tuple[str, str | None]]) -> frozenset[str]:
    """Claim names for SAML (Name, FriendlyName) pairs, e.g. an SP's RequestedAttributes; unknown dropped."""
    found = (from_saml_name(name, friendly) for name, friendly in attributes)
    return frozenset(c.name for c in found if c is not None)
