"""``broker.core.claims``: the vocabulary, its protocol names, value normalization and scopes."""

from __future__ import annotations

from collections import Counter

import pytest

from broker.core.claims import (
    BY_NAME,
    CLAIMS,
    ClaimKind,
    ClaimValue,
    as_text,
    claim,
    claims_for_scopes,
    coerce,
    from_oidc_name,
    from_saml_name,
    merge_assertions,
)

# (claim, SAML attribute Name in urn:oid form, FriendlyName): the X.500/LDAP OIDs of inetOrgPerson/eduPerson
SAML_NAMES = [
    ("email", "urn:oid:0.9.2342.19200300.100.1.3", "mail"),
    ("given_name", "urn:oid:2.5.4.42", "givenName"),
    ("family_name", "urn:oid:2.5.4.4", "sn"),
    ("name", "urn:oid:2.16.840.1.113730.3.1.241", "displayName"),
    ("preferred_username", "urn:oid:0.9.2342.19200300.100.1.1", "uid"),
    ("birthdate", "urn:oid:1.3.6.1.5.5.7.9.1", "dateOfBirth"),
    ("locale", "urn:oid:2.16.840.1.113730.3.1.39", "preferredLanguage"),
    ("phone_number", "urn:oid:2.5.4.20", "telephoneNumber"),
    ("address", "urn:oid:2.5.4.16", "postalAddress"),
]


@pytest.mark.parametrize(("name", "uri", "friendly"), SAML_NAMES)
def test_saml_names_map_both_ways(name: str, uri: str, friendly: str) -> None:
    found = claim(name)
    assert (found.saml_uri, found.saml_friendly) == (uri, friendly)
    assert from_saml_name(uri) is found
    assert from_saml_name(uri, "someOtherFriendlyName") is found  # Name wins over FriendlyName
    assert from_saml_name(friendly) is found  # basic name format: the friendly name is the Name


@pytest.mark.parametrize(("name", "uri", "friendly"), SAML_NAMES)
def test_friendly_name_is_the_fallback_for_an_unknown_name(name: str, uri: str, friendly: str) -> None:
    assert from_saml_name("urn:example:proprietary", friendly) is claim(name)


@pytest.mark.parametrize(("name", "friendly"), [("urn:example:proprietary", None), ("urn:example:proprietary", ""),
                                                ("urn:example:proprietary", "notAnAttribute"), ("", None)])
def test_unknown_saml_attribute_maps_to_nothing(name: str, friendly: str | None) -> None:
    assert from_saml_name(name, friendly) is None


def test_every_claim_with_an_oidc_name_maps_both_ways() -> None:
    with_oidc = [c for c in CLAIMS if c.oidc_name]
    assert len(with_oidc) == len(CLAIMS)
    for c in with_oidc:
        assert c.oidc_name is not None
        assert from_oidc_name(c.oidc_name) is c
    assert from_oidc_name("sub") is None  # the subject is never a claim of the vocabulary
    assert from_oidc_name("https://example.org/custom") is None


def test_verification_flags_have_no_saml_name() -> None:
    for name in ("email_verified", "phone_number_verified"):
        assert claim(name).saml_uri is None
        assert claim(name).saml_friendly is None


def test_saml_names_are_unique_across_uris_and_friendly_names() -> None:
    names = [n for c in CLAIMS for n in (c.saml_uri, c.saml_friendly) if n]
    assert [n for n, count in Counter(names).items() if count > 1] == []
    assert len(BY_NAME) == len(CLAIMS)


def test_unknown_claim_name_raises() -> None:
    with pytest.raises(KeyError):
        claim("shoe_size")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(True, True), (False, False), ("true", True), ("false", False), ("TRUE", True), ("False", False)],
)
@pytest.mark.parametrize("name", ["email_verified", "phone_number_verified"])
def test_boolean_claims_accept_booleans_and_apple_style_strings(name: str, raw: object, expected: bool) -> None:
    assert coerce(claim(name), raw) is expected


@pytest.mark.parametrize("raw", [1, 0, "1", "0", "yes", "", " true", None, 1.0, ["true"], {"value": "true"}])
def test_non_booleans_are_rejected_for_boolean_claims(raw: object) -> None:
    assert coerce(claim("email_verified"), raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("  anna@example.org ", "anna@example.org"), ("Anna", "Anna"), (42, "42"),
     ("   ", None), ("", None), (True, None), (None, None), (["a"], None), ({"a": "b"}, None), (1.5, None)],
)
def test_string_claims(raw: object, expected: ClaimValue | None) -> None:
    assert coerce(claim("given_name"), raw) == expected


def test_date_claim_is_kept_as_text() -> None:
    assert claim("birthdate").kind is ClaimKind.DATE
    assert coerce(claim("birthdate"), "1990-01-31") == "1990-01-31"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"street_address": "Main St 1", "locality": "Town"}, {"street_address": "Main St 1", "locality": "Town"}),
        ({"postal_code": 1234}, {"postal_code": "1234"}),
        ({"street_address": "Main Street 1", "geo": [1, 2], "extra": None}, {"street_address": "Main Street 1"}),
        ("Main Street 1\n1234 Town", {"formatted": "Main Street 1\n1234 Town"}),
        ("", None),
        (5, None),
        (None, None),
        (["Main Street 1"], None),
    ],
)
def test_address_claim(raw: object, expected: ClaimValue | None) -> None:
    assert coerce(claim("address"), raw) == expected


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        ([], set()),
        (["openid"], set()),
        (["offline_access", "unknown"], set()),
        (["email"], {"email", "email_verified"}),
        (["phone"], {"phone_number", "phone_number_verified"}),
        (["address"], {"address"}),
        (["profile"], {"given_name", "family_name", "name", "preferred_username", "birthdate", "locale"}),
        (["openid", "email", "address"], {"email", "email_verified", "address"}),
    ],
)
def test_claims_for_scopes(scopes: list[str], expected: set[str]) -> None:
    found = claims_for_scopes(scopes)
    assert isinstance(found, frozenset)
    assert found == expected


def test_claims_for_scopes_accepts_any_iterable() -> None:
    assert claims_for_scopes(iter(("email", "email"))) == {"email", "email_verified"}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (7, "7"),
        ("Anna", "Anna"),
        ({"formatted": "Main Street 1\n1234 Town", "locality": "Town"}, "Main Street 1\n1234 Town"),
        ({"street_address": "Main Street 1", "locality": "Town"}, "Main Street 1\nTown"),
        ({"formatted": "", "street_address": "", "locality": "Town"}, "Town"),
        ({}, ""),
    ],
)
def test_as_text(value: ClaimValue, text: str) -> None:
    assert as_text(value) == text


@pytest.mark.parametrize(("before", "now", "sent_once", "expected"), [
    # an omitted claim is dropped: the upstream no longer asserts it
    ({"given_name": "Ann", "email": "a@x"}, {"email": "a@x"}, frozenset(), {"email": "a@x"}),
    # ... unless the upstream sends it only once (Apple's name)
    ({"given_name": "Ann", "email": "a@x"}, {"email": "a@x"}, frozenset({"given_name"}),
     {"given_name": "Ann", "email": "a@x"}),
    ({"given_name": "Ann"}, {"given_name": "Anna"}, frozenset({"given_name"}), {"given_name": "Anna"}),
    # a changed address never inherits the old address's verification
    ({"email": "old@x", "email_verified": True}, {"email": "new@x"}, frozenset(), {"email": "new@x"}),
    ({"email": "old@x", "email_verified": True}, {"email": "new@x"}, frozenset({"email_verified"}),
     {"email": "new@x"}),
    # an address no longer asserted (GitHub: no primary verified one) is gone, with its flag
    ({"email": "a@x", "email_verified": True}, {"name": "A"}, frozenset(), {"name": "A"}),
    ({"phone_number": "1", "phone_number_verified": True, "email": "a@x"}, {"phone_number": "2"},
     frozenset({"email"}), {"phone_number": "2", "email": "a@x"}),
])
def test_merge_assertions_keeps_only_sent_once_claims_and_never_a_stale_verification(
        before: dict[str, ClaimValue], now: dict[str, ClaimValue], sent_once: frozenset[str],
        expected: dict[str, ClaimValue]) -> None:
    assert merge_assertions(before, now, sent_once) == expected


@pytest.mark.parametrize(("name", "friendly", "claim_name"), [
    ("http://eidas.europa.eu/attributes/naturalperson/PersonIdentifier", "PersonIdentifier", "person_identifier"),
    ("http://eidas.europa.eu/attributes/naturalperson/CurrentFamilyName", None, "family_name"),
    ("http://eidas.europa.eu/attributes/naturalperson/CurrentGivenName", "FirstName", "given_name"),
    ("http://eidas.europa.eu/attributes/naturalperson/DateOfBirth", None, "birthdate"),
    ("urn:oid:1.3.6.1.4.1.25178.1.2.3", "schacDateOfBirth", "birthdate"),
    ("urn:oid:1.3.6.1.4.1.25178.1.2.15", None, "person_identifier"),
    ("urn:oid:1.2.840.113549.1.9.1", None, "email"),
    ("urn:x:private-name", "mail", "email"),
    ("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname", None, "family_name"),
])
def test_upstream_saml_vocabularies_map_to_claims(name: str, friendly: str | None, claim_name: str) -> None:
    found = from_saml_name(name, friendly)

    assert found is not None and found.name == claim_name


def test_aliases_are_inbound_only_the_answer_uses_the_main_names() -> None:
    assert claim("family_name").saml_uri == "urn:oid:2.5.4.4"
    assert from_saml_name("urn:x:unknown", "notAnAttribute") is None


def test_a_compact_schac_date_becomes_an_iso_date() -> None:
    assert coerce(claim("birthdate"), "19840229") == "1984-02-29"
    assert coerce(claim("birthdate"), "1984-02-29") == "1984-02-29"
    assert coerce(claim("given_name"), "19840229") == "19840229"
