"""Personal values sealed at rest: AES-256-GCM (NIST SP 800-38D) under a key ring from configuration.

A sealed value is text, so it fits the column that held the plain value::

    v1.<key id>.<nonce>.<ciphertext and tag>

``key id`` is the first 8 hex digits of SHA-256 of the key (it names the key that opens the value and reveals
nothing usable about it); ``nonce`` is 96 random bits (SP 800-38D §8.2.2: at most 2^32 values per key with
random nonces, far beyond what a broker writes between rotations); the last part is the ciphertext with its
128-bit tag. Both are unpadded base64url (RFC 4648 §5) and must be in canonical form, so every change to the
text is a change to the bytes the tag covers.

The associated data (SP 800-38D §5.2.1.1: authenticated, not encrypted) binds a value to the row it was written
for, as the caller's ``context`` (e.g. table and column, issuer and subject): a value copied into another row
does not open there.

Trusted: the keys (from the operator's configuration). Untrusted: every stored value (whoever can write the
database may have changed it). A value that is not sealed but looks like plain claims text (a JSON object, or
empty) is *legacy*, written before sealing existed: it is returned as it is and sealed by the next write. So
until ``broker keys rotate-claims`` has sealed every legacy value, someone who can write the database could put
plain claims in a row; sealed values cannot be forged or moved.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "v1"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96 bits, the nonce length GCM is defined for without hashing (SP 800-38D §8.2)
TAG_BYTES = 16
_KEY_ID = re.compile(r"[0-9a-f]{8}")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class UnreadableValue(Exception):
    """A stored value that no key of the ring opens: malformed, sealed under a key the ring does not hold,
    changed, or moved from another row. The message never contains the value."""


def key_id(key: bytes) -> str:
    """The short stable name of ``key`` written into every value it seals."""
    return hashlib.sha256(key).hexdigest()[:8]


class Sealer:
    """An ordered key ring: the first key seals, every key opens (rotation: put the new key first)."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        seen: dict[str, bytes] = {}
        for key in keys:
            if len(key) != KEY_BYTES:
                raise ValueError(f"a claims key must be {KEY_BYTES} bytes, got {len(key)}")
            kid = key_id(key)
            if seen.setdefault(kid, key) != key:  # 1 in 2^32 per pair: a stored value must name one key
                raise ValueError(f"two different claims keys share the key id {kid}; generate another key")
        if not seen:
            raise ValueError("a sealer needs at least one key")
        self._ring = {kid: AESGCM(key) for kid, key in seen.items()}  # a repeated key counts once
        self.current_key_id = key_id(keys[0])

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key id of the ring, the sealing key's first."""
        return tuple(self._ring)

    def seal(self, plaintext: str, context: Sequence[str]) -> str:
        """``plaintext`` encrypted and authenticated under the current key, bound to ``context``."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._ring[self.current_key_id].encrypt(
            nonce, plaintext.encode("utf-8"), _associated_data(self.current_key_id, context))
        return ".".join((VERSION, self.current_key_id, _b64encode(nonce), _b64encode(sealed)))

    def open(self, stored: str, context: Sequence[str]) -> str:
        """The plaintext of ``stored`` (sealed, or legacy plain claims text returned as it is);
        ``UnreadableValue`` when it cannot be trusted."""
        if is_legacy(stored):
            return stored
        parts = stored.split(".")
        if len(parts) != 4 or parts[0] != VERSION:
            raise UnreadableValue("neither a sealed value of a known version nor plain claims")
        _, kid, nonce_text, sealed_text = parts
        if not _KEY_ID.fullmatch(kid):
            raise UnreadableValue("malformed key id")
        nonce, sealed = _b64decode(nonce_text), _b64decode(sealed_text)
        if len(nonce) != NONCE_BYTES or len(sealed) < TAG_BYTES:
            raise UnreadableValue("malformed sealed value")
        cipher = self._ring.get(kid)
        if cipher is None:
            raise UnreadableValue(f"sealed under key {kid}, which the configured claims keys do not include")
        try:
            plaintext = cipher.decrypt(nonce, sealed, _associated_data(kid, context))
        except InvalidTag:
            raise UnreadableValue(f"sealed value under key {kid} fails authentication "
                                  "(changed, or moved from another row)") from None
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError:  # authentic, so only a writer holding the key could have made it
            raise UnreadableValue("sealed value is not UTF-8 text") from None

    def is_current(self, stored: str) -> bool:
        """Whether ``stored`` is sealed under the current key (rotation skips those)."""
        return stored.startswith(f"{VERSION}.{self.current_key_id}.")


def is_legacy(stored: str) -> bool:
    """Plain claims text as ``broker.storage.codec`` wrote it before sealing: a JSON object, or empty."""
    return stored == "" or stored.startswith("{")


def _associated_data(kid: str, context: Sequence[str]) -> bytes:
    # A JSON array: unambiguous whatever the parts contain (an issuer with a NUL or a quote cannot pose
    # as another split of issuer and subject); ASCII escapes make it independent of any encoding choice.
    return json.dumps([VERSION, kid, *context]).encode("ascii")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Canonical unpadded base64url only: the decoder would ignore unused low bits of the last character,
    so two texts could give the same bytes, and a changed character would go unnoticed."""
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise UnreadableValue("malformed base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise UnreadableValue("malformed base64url") from None
    if _b64encode(data) != text:
        raise UnreadableValue("base64url not in canonical form")
    return data
