"""Claims carrying CR/LF or bidirectional controls (Unicode TR#9 §2, U+202E RIGHT-TO-LEFT OVERRIDE) are not
released as they are (issue 15, item 7): names are normalised, identifiers refused (``broker.core.release``)."""

from __future__ import annotations

import pytest

from broker.core.claims import ClaimValue
from broker.core.release import release
from broker.core.unsafe_text import normalized_claim

EVERYTHING = frozenset({"email", "email_verified", "email_relay", "given_name", "family_name", "name",
                        "phone_number", "address", "locale"})


@pytest.mark.parametrize(("name", "evil", "released"), [
    ("given_name", "Eve\r\nrole: admin", "Eve role: admin"),
    ("family_name", "Eve\u202eeci\u0142A", "Eveeci\u0142A"),  # RLO would display "Alice" reversed after Eve
    ("name", "\u2066Mallory\u2069\x1b[2J\x00\r Jones\u2028", "Mallory [2J  Jones"),
    ("locale", "fi\u200f\x85", "fi"),
    ("given_name", "\u202e\r\n", None),  # nothing left: not released at all
])
def test_a_name_with_line_breaks_or_bidi_controls_is_normalised_before_release(
        name: str, evil: str, released: str | None) -> None:
    out = release({name: evil}, EVERYTHING)
    assert out.get(name) == released


@pytest.mark.parametrize("evil", ["anna@city.example\r\nBcc: eve@evil.example", "anna@\u202eelpmaxe.ytic",
                                  "\u200eanna@city.example", "anna@city.example\x00"])
def test_an_email_address_with_controls_is_refused_with_its_flags(evil: str) -> None:
    profile: dict[str, ClaimValue] = {"email": evil, "email_verified": True, "email_relay": False,
                                      "given_name": "Anna"}
    out = release(profile, EVERYTHING)
    assert "email" not in out and "email_verified" not in out and "email_relay" not in out
    assert out["given_name"] == "Anna"


def test_the_address_keeps_its_line_breaks_and_loses_the_rest() -> None:
    address: ClaimValue = {"formatted": "Katu 1\r\nFI-00100 Helsinki\u202e\u2028Finland", "street_address": "Katu 1\nB"}
    out = release({"address": address}, EVERYTHING)
    assert out["address"] == {"formatted": "Katu 1\nFI-00100 Helsinki\nFinland", "street_address": "Katu 1 B"}


def test_honest_values_go_out_unchanged() -> None:
    profile: dict[str, ClaimValue] = {"email": "anna@city.example", "email_verified": True,
                                      "family_name": "\u05db\u05d4\u05df", "name": "Zoë  Ölund-Ähtäri",
                                      "phone_number": "+358 40 123"}
    assert release(profile, EVERYTHING) == profile
    arabic = "\u0627\u0644\u0639\u0631\u0628\u064a\u0629"  # laid out by TR#9's implicit rules, no controls
    assert normalized_claim(arabic) == arabic
