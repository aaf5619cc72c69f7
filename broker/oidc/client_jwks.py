"""The ``jwks`` of a registered client (RFC 7591 §2): public keys only, strong enough, as canonical JSON.

A ``private_key_jwt`` client (RFC 7523) registers the public half of its key here; the private half never
leaves the client, so a key set carrying private members is refused rather than stored.
"""

from __future__ import annotations

import base64
import json

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KEY_TYPES = ("RSA", "EC", "OKP")
_MIN_RSA_BITS = 2048


def public_jwks_text(value: object, problems: list[str]) -> str | None:
    """RFC 7591 §2 ``jwks``: a JWK Set of public keys only (RFC 7517 §5), as canonical JSON text."""
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list) or not value["keys"]:
        problems.append("jwks must be a JWK Set: an object whose keys member lists at least one key")
        return None
    for index, key in enumerate(value["keys"]):
        if not isinstance(key, dict) or key.get("kty") not in _KEY_TYPES:
            problems.append(f"jwks key {index}: kty must be one of {', '.join(_KEY_TYPES)}")
            return None
        private = sorted(_PRIVATE_JWK_MEMBERS & set(key))
        if private:
            problems.append(f"jwks key {index} holds private key members ({', '.join(private)}): register "
                            "the public key only, and keep the private key with the client")
            return None
        if key["kty"] == "RSA" and _rsa_bits(key.get("n")) < _MIN_RSA_BITS:  # checked before joserfc warns
            problems.append(f"jwks key {index}: an RSA key needs a modulus n of at least {_MIN_RSA_BITS} bits")
            return None
    try:
        keys = KeySet.import_key_set(value)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        problems.append(f"jwks is not a valid JWK Set ({type(exc).__name__}: {exc})")
        return None
    if any(k.is_private for k in keys.keys):  # already refused by member name; the library's view agrees
        problems.append("jwks holds a private key")
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _rsa_bits(n: object) -> int:
    if not isinstance(n, str):
        return 0
    try:
        return int.from_bytes(base64.urlsafe_b64decode(n + "=" * (-len(n) % 4)), "big").bit_length()
    except ValueError:  # binascii.Error: not base64url
        return 0
