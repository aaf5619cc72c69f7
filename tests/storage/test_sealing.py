"""``Sealer``: AES-256-GCM with a key ring; every change to a sealed value, or a move to another row, is refused."""

from __future__ import annotations

import hashlib
import json
import re
import secrets

import pytest

from broker.storage import sealing
from broker.storage.sealing import Sealer, UnreadableValue, key_id

K1, K2, K3 = (secrets.token_bytes(32) for _ in range(3))
CONTEXT = ("linked_identities.last_claims", "https://idp.example.org", "subject-1")
CLAIMS = json.dumps({"email": "anna@example.org", "given_name": "Anna"})
FORMAT = re.compile(r"v1\.([0-9a-f]{8})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]+)")
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_round_trip_in_the_documented_format() -> None:
    sealer = Sealer([K1])

    sealed = sealer.seal(CLAIMS, CONTEXT)

    match = FORMAT.fullmatch(sealed)
    assert match is not None, sealed
    assert match[1] == key_id(K1) == hashlib.sha256(K1).hexdigest()[:8] == sealer.current_key_id
    assert "anna" not in sealed.lower() and "Anna" not in sealed
    assert sealer.open(sealed, CONTEXT) == CLAIMS
    assert sealer.is_current(sealed)


def test_every_changed_character_is_refused() -> None:
    sealer = Sealer([K1])
    sealed = sealer.seal(CLAIMS, CONTEXT)

    for index, char in enumerate(sealed):
        for other in {"A" if char != "A" else "B", "." if char != "." else "x", "="}:
            with pytest.raises(UnreadableValue):
                sealer.open(sealed[:index] + other + sealed[index + 1:], CONTEXT)


def test_the_last_character_has_one_spelling_only() -> None:
    """Base64 decoders ignore the unused low bits of a last character; a changed spelling must not pass."""
    sealer = Sealer([K1])
    sealed = next(s for s in (sealer.seal(CLAIMS + " " * n, CONTEXT) for n in range(3))
                  if len(s.rsplit(".", 1)[1]) % 4)  # a ciphertext whose length is not a multiple of 3

    for other in BASE64URL.replace(sealed[-1], ""):
        with pytest.raises(UnreadableValue):
            sealer.open(sealed[:-1] + other, CONTEXT)


@pytest.mark.parametrize("change", [
    lambda s: s[:-1],  # truncated
    lambda s: s + "A",  # extended
    lambda s: s + ".",  # a fifth part
    lambda s: s.replace(".", "..", 1),
    lambda s: "v2" + s[2:],  # another version
    lambda s: s.upper(),
], ids=["truncated", "extended", "fifth-part", "empty-part", "version", "upper-case"])
def test_malformed_values_are_refused(change: object) -> None:
    sealer = Sealer([K1])
    sealed = sealer.seal(CLAIMS, CONTEXT)

    with pytest.raises(UnreadableValue):
        sealer.open(change(sealed), CONTEXT)  # type: ignore[operator]


@pytest.mark.parametrize("other_row", [
    ("linked_identities.last_claims", "https://idp.example.org", "subject-2"),  # another subject
    ("linked_identities.last_claims", "https://other.example.org", "subject-1"),  # another issuer
    ("linked_identities.last_claims", "https://idp.example.org", "subject-1", ""),  # another shape
    ("linked_identities.last_claims", "https://idp.example.orgsubject-1", ""),  # the same characters split apart
    ("accounts.profile", "https://idp.example.org", "subject-1"),  # another column
])
def test_a_value_moved_to_another_row_is_refused(other_row: tuple[str, ...]) -> None:
    sealer = Sealer([K1])
    sealed = sealer.seal(CLAIMS, CONTEXT)

    with pytest.raises(UnreadableValue, match="fails authentication"):
        sealer.open(sealed, other_row)


def test_an_unknown_key_id_is_refused_and_named() -> None:
    sealed = Sealer([K1]).seal(CLAIMS, CONTEXT)

    with pytest.raises(UnreadableValue) as refused:
        Sealer([K2]).open(sealed, CONTEXT)

    assert f"sealed under key {key_id(K1)}" in str(refused.value)
    assert "anna" not in str(refused.value)  # never the value


def test_a_known_key_id_with_another_key_behind_it_is_refused() -> None:
    """The key id only chooses the key; the tag decides."""
    sealed = Sealer([K1]).seal(CLAIMS, CONTEXT)
    forged = sealed.replace(key_id(K1), key_id(K2), 1)

    with pytest.raises(UnreadableValue, match="fails authentication"):
        Sealer([K2]).open(forged, CONTEXT)


@pytest.mark.parametrize("legacy", ['{"email": "anna@example.org"}', "{}", ""])
def test_legacy_plain_values_are_read_as_they_are(legacy: str) -> None:
    sealer = Sealer([K1])

    assert sealer.open(legacy, CONTEXT) == legacy
    assert not sealer.is_current(legacy)  # so a rotation seals it


@pytest.mark.parametrize("junk", ["anna@example.org", "[1, 2]", "v1", " {}", "null"])
def test_values_neither_sealed_nor_plain_claims_are_refused(junk: str) -> None:
    with pytest.raises(UnreadableValue):
        Sealer([K1]).open(junk, CONTEXT)


def test_rotation_old_values_open_and_new_ones_are_sealed_under_the_new_key() -> None:
    old = Sealer([K1]).seal(CLAIMS, CONTEXT)
    rotated = Sealer([K2, K1])

    assert rotated.open(old, CONTEXT) == CLAIMS
    assert not rotated.is_current(old)
    resealed = rotated.seal(rotated.open(old, CONTEXT), CONTEXT)
    assert resealed.split(".")[1] == key_id(K2) == rotated.current_key_id
    assert rotated.is_current(resealed)
    assert Sealer([K2]).open(resealed, CONTEXT) == CLAIMS  # the old key can go
    with pytest.raises(UnreadableValue):
        Sealer([K2, K3]).open(old, CONTEXT)  # and without it, the old value is unreadable
    assert rotated.key_ids == (key_id(K2), key_id(K1))


def test_nonces_are_unique() -> None:
    sealer = Sealer([K1])

    values = [sealer.seal(CLAIMS, CONTEXT) for _ in range(2000)]

    assert len({value.split(".")[2] for value in values}) == len(values)


@pytest.mark.parametrize("keys", [[], [b"short"], [K1, b"x" * 33]], ids=["none", "short", "long"])
def test_a_ring_needs_keys_of_32_bytes(keys: list[bytes]) -> None:
    with pytest.raises(ValueError):
        Sealer(keys)


def test_a_repeated_key_counts_once_and_a_key_id_collision_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Sealer([K1, K2, K1]).key_ids == (key_id(K1), key_id(K2))

    monkeypatch.setattr(sealing, "key_id", lambda key: "00000000")
    with pytest.raises(ValueError, match="share the key id 00000000"):
        Sealer([K1, K2])
