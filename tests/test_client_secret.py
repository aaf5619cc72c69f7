"""Client secrets at rest (``broker.oidc.client_secret``): both stored forms verify, a wrong secret never
does, and what an operator may bring along is checked for strength."""

from __future__ import annotations

import base64
import hashlib

import pytest

from broker.oidc.client import OidcClient
from broker.oidc.client_secret import (
    SCRYPT_N,
    generate_secret,
    hash_generated,
    hash_problem,
    hash_provided,
    secret_problems,
    verify_secret,
)

#: a secret as another identity provider generated it (Keycloak style: 32 letters and digits)
IMPORTED = "q7Vd9XkP2mWb4ZtR8sLc1NhJ6yFg3EaU"


def test_a_provided_secret_is_stored_as_salted_scrypt_and_verifies() -> None:
    stored = hash_provided(IMPORTED)
    again = hash_provided(IMPORTED)

    scheme, n, r, p, salt, key = stored.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", SCRYPT_N, 8, 1)
    assert len(salt) == 22 and len(key) == 43  # 16 and 32 bytes, base64url without padding
    assert stored != again  # a fresh salt each time: equal secrets do not give equal hashes
    assert IMPORTED not in stored
    assert hash_problem(stored) is None
    assert verify_secret(IMPORTED, stored) and verify_secret(IMPORTED, again)
    assert not verify_secret(IMPORTED[:-1], stored)
    assert not verify_secret(IMPORTED + "x", stored)
    assert not verify_secret("", stored)


def test_the_hash_is_scrypt_of_the_secret_with_the_stated_parameters() -> None:
    """An independent recomputation (RFC 7914 through hashlib), so the format documented in the README is the
    one written."""
    salt = bytes(range(16))
    stored = hash_provided(IMPORTED, salt=salt)
    expected = hashlib.scrypt(IMPORTED.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)

    key = base64.urlsafe_b64encode(expected).decode().rstrip("=")
    assert stored == f"scrypt$16384$8$1$AAECAwQFBgcICQoLDA0ODw${key}"


def test_generated_secrets_keep_the_plain_sha256_form() -> None:
    secret = generate_secret()
    stored = hash_generated(secret)

    assert len(secret) >= 43 and stored == "sha256:" + hashlib.sha256(secret.encode()).hexdigest()
    assert verify_secret(secret, stored)
    assert not verify_secret(secret.upper(), stored)
    assert not verify_secret(secret, None)


def test_the_client_checks_either_form() -> None:
    def client(stored: str) -> OidcClient:
        return OidcClient("app", "App", ("https://app.example.org/cb",), "client_secret_basic", stored)

    assert client(hash_provided(IMPORTED)).check_secret(IMPORTED)
    assert client(hash_generated(IMPORTED)).check_secret(IMPORTED)
    assert not client(hash_provided(IMPORTED)).check_secret("q7Vd9XkP2mWb4ZtR8sLc1NhJ6yFg3EaV")


VALID = hash_provided(IMPORTED, salt=b"\x01" * 16)
SALT_AND_KEY = VALID.split("$", 4)[4]


@pytest.mark.parametrize(("stored", "message"), [
    ("sha256:abc", 'must be "sha256:" and 64 lowercase hex digits'),
    ("sha256:" + "A" * 64, 'must be "sha256:" and 64 lowercase hex digits'),
    ("md5:" + "0" * 32, 'or "scrypt$N$r$p$salt$key"'),
    (42, 'must be "sha256:"'),
    (f"scrypt$16383$8$1${SALT_AND_KEY}", "N a power of two"),
    (f"scrypt$1048576$8$1${SALT_AND_KEY}", "at most 64 MiB"),  # 1 GiB of memory per check: refused
    (f"scrypt$16384$64$1${SALT_AND_KEY}", "r 1-32"),
    (f"scrypt$16384$8$0${SALT_AND_KEY}", "p 1-16"),
    (VALID[:-1], "a 32-byte key"),
])
def test_unusable_hashes_are_named(stored: object, message: str) -> None:
    problem = hash_problem(stored)

    assert problem is not None and message in problem
    if isinstance(stored, str):
        assert not verify_secret(IMPORTED, stored)


@pytest.mark.parametrize(("secret", "message"), [
    ("", "is empty"),
    ("short-Secret-1", "has 14 characters; at least 16"),
    (" q7Vd9XkP2mWb4ZtR8sLc", "begins or ends with a space"),
    ("q7Vd9XkP2mWb4ZtR8sLc\n", "printable ASCII"),
    ("q7Vd9XkP2mWb4ZtR8sLé", "printable ASCII"),
    ("aaaaaaaaaaaaaaaaaaaaaaaa", "one short piece repeated"),
    ("Secret1!Secret1!Secret1!", "one short piece repeated"),
    ("abcdefghijklmnopqrstuvwx", "runs of neighbouring characters"),
    ("98765432109876543210x", "runs of neighbouring characters"),
    ("citypermitsadmin", "too guessable: about 75 bits"),  # 16 lowercase letters
    ("4815162342108159265", "too guessable"),  # 19 digits: about 63 bits
    ("x" * 1025, "longer than 1024"),
])
def test_weak_secrets_are_refused_without_being_quoted(secret: str, message: str) -> None:
    problems = secret_problems(secret)

    assert problems and message in " ".join(problems), problems
    if len(secret) > 3:
        assert not any(secret.strip() in p for p in problems)


@pytest.mark.parametrize("secret", [
    IMPORTED,
    "GOCSPX-1a2B3c4D5e6F7g8H9i0JkLmNoPq",  # a Google-style secret
    "7d1f0c2ab9e84f3c8a6b5d4e3f2a1b0c",  # 128 bits in hex
    "Tr0ub4dor&3-horse-Battery",  # a long typed one with every kind of character
])
def test_secrets_of_other_providers_pass(secret: str) -> None:
    assert secret_problems(secret) == []
