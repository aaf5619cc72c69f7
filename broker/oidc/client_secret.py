"""Client secrets at rest, and how strong a secret must be (RFC 6749 §2.3.1, RFC 6819 §5.1.4.1.3 "No cleartext
storage of credentials", §5.1.4.2.2 "Use high entropy for secrets").

A registration (a file in ``metadata/oidc-clients/`` or a dynamically registered client) holds only the
``client_secret_hash``, in one of two forms:

- ``sha256:<64 lowercase hex digits>``: the SHA-256 of a secret the broker generated itself
  (``secrets.token_urlsafe(32)``: 256 random bits). Nobody can run a dictionary against 256 random bits, so a
  plain hash is as good as a slow one here, and the token endpoint checks it in microseconds.
- ``scrypt$<N>$<r>$<p>$<salt>$<key>``: a secret the operator brought along (``broker client add
  --client-secret-file/--client-secret-env``, ``broker client import``), typically the secret an app already
  has at another identity provider. It may be weaker than one the broker makes, so it gets a salted, slow key
  derivation: scrypt (RFC 7914) with cost ``N`` (a power of two), block size ``r`` and parallelism ``p``; salt
  (16 bytes) and derived key (32 bytes) in unpadded base64url (RFC 4648 §5). Today's parameters are
  ``SCRYPT_N``, ``SCRYPT_R``, ``SCRYPT_P`` (about 16 MiB and a few tens of milliseconds per check; see
  ``bench/client_secret_bench.py``); the parameters are read from each hash, so they can be raised later
  without invalidating the hashes already stored.

Both are checked in constant time (``hmac.compare_digest``). Stored hashes are trusted configuration, but
their scrypt parameters are still bounded (``MAX_SCRYPT_MEMORY``) so a typo cannot make every token request
allocate gigabytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import math
import re
import secrets

GENERATED_PREFIX = "sha256:"
SCRYPT_PREFIX = "scrypt$"
#: RFC 7914 §2 parameters for secrets the operator brings: N = 2^14, r = 8, p = 1 (16 MiB, the "interactive
#: login" figure of the scrypt paper); measured by bench/client_secret_bench.py
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES, KEY_BYTES = 16, 32
#: an upper bound on what a stored hash may make the token endpoint spend (scrypt needs 128 * N * r bytes)
MAX_SCRYPT_MEMORY = 64 * 1024 * 1024
#: the shortest secret the operator may bring, and the least estimated strength (see ``secret_problems``)
MIN_SECRET_LENGTH = 16
MIN_SECRET_BITS = 80
MAX_SECRET_LENGTH = 1024
_SHA256_RE = re.compile(r"sha256:[0-9a-f]{64}")
_SCRYPT_RE = re.compile(r"scrypt\$(\d{1,8})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9_-]{22})\$([A-Za-z0-9_-]{43})")
#: RFC 6749 Appendix A.2: client-secret = *VSCHAR, VSCHAR = %x20-7E
_VSCHAR_RE = re.compile(r"[\x20-\x7e]*")
HASH_FORMATS = ('client_secret_hash must be "sha256:" and 64 lowercase hex digits, or "scrypt$N$r$p$salt$key" '
                "as written by `broker client add --client-secret-file` or `broker client import`")


def generate_secret() -> str:
    """A new client secret of 256 random bits (RFC 6749 §10.10 asks for at most 2^-128 guessing odds)."""
    return secrets.token_urlsafe(32)


def hash_generated(secret: str) -> str:
    """The stored form of a secret the broker generated (``generate_secret``): a plain SHA-256 is enough for
    256 random bits."""
    return GENERATED_PREFIX + hashlib.sha256(secret.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES, maxmem=MAX_SCRYPT_MEMORY + 2**20)


def hash_provided(secret: str, *, salt: bytes | None = None) -> str:
    """The stored form of a secret the operator brought: ``scrypt$N$r$p$salt$key`` with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    key = _scrypt(secret, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"{SCRYPT_PREFIX}{SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def _scrypt_parts(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    """(N, r, p, salt, key) of a well-formed scrypt hash within the bounds, else None."""
    found = _SCRYPT_RE.fullmatch(stored)
    if found is None:
        return None
    n, r, p = (int(found.group(i)) for i in (1, 2, 3))
    if n < 2 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16 or 128 * n * r > MAX_SCRYPT_MEMORY:
        return None
    try:
        salt, key = _unb64(found.group(4)), _unb64(found.group(5))
    except (binascii.Error, ValueError):
        return None
    return (n, r, p, salt, key) if len(salt) == SALT_BYTES and len(key) == KEY_BYTES else None


def hash_problem(stored: object) -> str | None:
    """What is wrong with a ``client_secret_hash`` read from a registration, or None when it can be used."""
    if isinstance(stored, str) and (_SHA256_RE.fullmatch(stored) or _scrypt_parts(stored) is not None):
        return None
    if isinstance(stored, str) and stored.startswith(SCRYPT_PREFIX):
        return (f"client_secret_hash: scrypt needs N a power of two, r 1-32, p 1-16, at most "
                f"{MAX_SCRYPT_MEMORY // 2**20} MiB (128*N*r), a {SALT_BYTES}-byte salt and a {KEY_BYTES}-byte key")
    return HASH_FORMATS


def verify_secret(presented: str, stored: str | None) -> bool:
    """Whether ``presented`` (untrusted, from the token request) is the secret ``stored`` was made from.

    Constant time in the secret (``hmac.compare_digest`` of equal-length digests); an unusable ``stored``
    matches nothing.
    """
    if stored is None:
        return False
    if stored.startswith(GENERATED_PREFIX):
        return hmac.compare_digest(hash_generated(presented), stored)
    parts = _scrypt_parts(stored)
    if parts is None or len(presented) > MAX_SECRET_LENGTH:
        return False
    n, r, p, salt, key = parts
    return hmac.compare_digest(_scrypt(presented, salt, n, r, p), key)


def secret_problems(secret: str) -> list[str]:
    """Why a secret the operator brought is too weak to register, or nothing. The secret is never quoted.

    The floor: ``MIN_SECRET_LENGTH`` (16) characters and ``MIN_SECRET_BITS`` (80) bits estimated as length *
    log2(the size of the character classes used). Apps at other identity providers have generated secrets of
    128 bits and more (32+ random characters), which pass easily; what is refused is what a person typed. 80
    bits is far beyond online guessing at the token endpoint, and the scrypt hash makes offline guessing from a
    leaked metadata folder costly too. The estimate is an upper bound (it cannot see a dictionary word), so a
    secret is also refused when it is one short piece repeated or mostly runs of neighbouring characters.
    """
    if not secret:
        return ["the client secret is empty"]
    if len(secret) > MAX_SECRET_LENGTH:
        return [f"the client secret is longer than {MAX_SECRET_LENGTH} characters"]
    if not _VSCHAR_RE.fullmatch(secret):
        return ["the client secret must be printable ASCII (RFC 6749 Appendix A.2: VSCHAR, %x20-7E)"]
    problems = []
    if secret != secret.strip():
        problems.append("the client secret begins or ends with a space (a copy-and-paste slip?)")
    if len(secret) < MIN_SECRET_LENGTH:
        problems.append(f"the client secret has {len(secret)} characters; at least {MIN_SECRET_LENGTH}")
    elif _repeats(secret):
        problems.append("the client secret is one short piece repeated")
    elif sum(abs(ord(b) - ord(a)) <= 1 for a, b in itertools.pairwise(secret)) * 2 >= len(secret):
        problems.append("the client secret is mostly runs of neighbouring characters (aaaa, abcd, 4321)")
    elif (bits := estimated_bits(secret)) < MIN_SECRET_BITS:
        problems.append(f"the client secret is too guessable: about {bits} bits from its length and kinds of "
                        f"characters; at least {MIN_SECRET_BITS} (use more characters, or letters, digits and "
                        "symbols mixed)")
    return problems


def estimated_bits(secret: str) -> int:
    """Length * log2(size of the character classes present: lower, upper, digits, other VSCHAR), rounded down."""
    pool = sum(size for size, present in (
        (26, any(c.islower() for c in secret)), (26, any(c.isupper() for c in secret)),
        (10, any(c.isdigit() for c in secret)), (33, any(not c.isalnum() for c in secret))) if present)
    return int(len(secret) * math.log2(pool)) if pool > 1 else 0


def _repeats(secret: str) -> bool:
    """Whether ``secret`` is a piece of at most half its length, repeated (``abcabcabc``)."""
    return any(secret == (secret[:size] * (len(secret) // size + 1))[:len(secret)]
               for size in range(1, len(secret) // 2 + 1))


def brought_secret_problems(method: object, secret: object, methods: tuple[str, ...]) -> list[str]:
    """Why the ``client_secret`` an app brings from another provider (RFC 6749 §2.3.1) cannot be registered for a
    client authenticating with ``method``, or nothing: only the ``methods`` that use a secret take one, and it
    must be text that passes ``secret_problems``. For ``broker client import``, the console and the admin API."""
    if method not in methods:
        return [f"client_secret is only for {' and '.join(methods)}, not {method}"]
    if not isinstance(secret, str):
        return [f"{method} needs the app's client_secret (text)"]
    return secret_problems(secret)
