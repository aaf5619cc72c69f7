"""``broker.core.display``: what citizens see of an app: a name that is never a URL, logos only from https or
inline images, policy links only to https (SAML Metadata UI §2.1; RFC 7591 §2)."""

from __future__ import annotations

import pytest

from broker.core.display import logo_problem, looks_like_uri, name_problem, policy_problem, readable_name


@pytest.mark.parametrize(("candidates", "identifier", "last_resort", "expected"), [
    (("Parking permits", "Service"), "https://permits.example.org/sp", "", "Parking permits"),
    ((None, "  Library  "), "https://library.example.org/sp", "", "Library"),
    (("https://permits.example.org/sp", None), "https://permits.example.org/sp", "", "permits.example.org"),
    ((), "http://127.0.0.1:9/sp1", "", "127.0.0.1"),
    ((), "https://www.city.example/saml", "", "city.example"),  # the host, without www.
    ((), "urn:city:permits", "permits", "permits"),  # no host: the registration's file name
    ((), "urn:city:permits", "", "an app"),
    ((None,), "city-portal", "", "city-portal"),  # a plain client_id is a name
])
def test_a_readable_name_is_never_the_entity_id(candidates: tuple[str | None, ...], identifier: str,
                                               last_resort: str, expected: str) -> None:
    name = readable_name(candidates, identifier, last_resort)

    assert name == expected
    assert not looks_like_uri(name)


@pytest.mark.parametrize(("uri", "ok"), [
    ("https://city.example/logo.png", True),
    ("data:image/png;base64,iVBORw0KGgo=", True),
    ("http://city.example/logo.png", False),  # mixed content
    ("javascript:alert(1)", False),
    ("data:image/svg+xml;base64,PHN2Zz4=", False),  # SVG can carry script
    ("data:text/html;base64,PGgxPg==", False),
    ("https://user@city.example/logo.png", False),
    ("https:///logo.png", False),
    (42, False),
])
def test_logos_only_from_https_or_inline_images(uri: object, ok: bool) -> None:
    assert (logo_problem(uri) is None) is ok


@pytest.mark.parametrize(("uri", "ok"), [
    ("https://city.example/privacy", True),
    ("data:image/png;base64,iVBORw0KGgo=", False),
    ("http://city.example/privacy", False),
])
def test_policy_links_only_to_https(uri: str, ok: bool) -> None:
    assert (policy_problem(uri) is None) is ok


@pytest.mark.parametrize(("name", "ok"), [
    ("Parking permits", True),
    ("Café: opening hours", True),  # a colon alone does not make a URI
    ("https://permits.example.org", False),
    ("urn:city:permits", False),
    ("", False),
    ("x" * 201, False),
])
def test_an_operators_display_name_is_a_name(name: str, ok: bool) -> None:
    assert (name_problem(name) is None) is ok
