"""``broker.core.identifiers``: pairwise subject identifiers."""

from __future__ import annotations

import re

import pytest

from broker.core.identifiers import MIN_SECRET_BYTES, pairwise_id

SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(1, 33))
SECTOR = "https://sp.city.example/"
ACCOUNT = "0b7c9f1e-8d2a-4e59-9a61-3f0e2c8d4b17"


def test_stable_for_one_account_and_sector() -> None:
    assert pairwise_id(SECRET, SECTOR, ACCOUNT) == pairwise_id(bytes(SECRET), SECTOR, ACCOUNT)


@pytest.mark.parametrize(
    ("secret", "sector", "account"),
    [
        (SECRET, "https://other.city.example/", ACCOUNT),  # another sector
        (SECRET, SECTOR, "5d1f3c2b-0a9e-4f87-b6c5-d4e3f2a1b0c9"),  # another account
        (OTHER_SECRET, SECTOR, ACCOUNT),  # another secret
        (SECRET, SECTOR.rstrip("/"), ACCOUNT),  # sectors are compared exactly
    ],
)
def test_differs_when_any_input_differs(secret: bytes, sector: str, account: str) -> None:
    assert pairwise_id(secret, sector, account) != pairwise_id(SECRET, SECTOR, ACCOUNT)


def test_sector_and_account_boundary_is_unambiguous() -> None:
    assert pairwise_id(SECRET, "ab", "c") != pairwise_id(SECRET, "a", "bc")


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        pairwise_id(b"x" * (MIN_SECRET_BYTES - 1), SECTOR, ACCOUNT)
    with pytest.raises(ValueError):
        pairwise_id(b"", SECTOR, ACCOUNT)
    assert pairwise_id(b"x" * MIN_SECRET_BYTES, SECTOR, ACCOUNT)


@pytest.mark.parametrize(
    ("sector", "account"), [(SECTOR, ACCOUNT), ("cityportal", "anna"), ("https://sp.city.example/", "account-1")]
)
def test_output_is_opaque(sector: str, account: str) -> None:
    value = pairwise_id(SECRET, sector, account)
    assert re.fullmatch(r"[a-z2-7]{52}", value)  # 256 bits, base32, unpadded, lower case
    for visible in (account, sector, *re.split(r"[^a-z0-9]+", account.lower()), "city", "example"):
        if len(visible) >= 4:
            assert visible.lower() not in value
