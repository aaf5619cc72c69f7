"""The demo provider's signing keys, their rotation, and the tampering ``Mischief`` asks for.

Keys are RSA (RS256). ``rotate`` makes a new current key with a new ``kid`` while the old ones stay in the
JWKS (how real providers roll keys, so relying parties can refetch: OIDC Core 1.0 §10.1.1).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from broker.demo.oidc_provider_config import Mischief

ALG = "RS256"


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _as_jwk(private_key: rsa.RSAPrivateKey) -> RSAKey:
    # The key object itself, not its PEM: parsing a PEM runs OpenSSL's RSA key check, 0.15-0.2 s a key.
    key = RSAKey.import_key(private_key, parameters={"use": "sig", "alg": ALG})
    key.ensure_kid()  # kid = RFC 7638 thumbprint
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_json(value: dict[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


class KeyRing:
    """One current signing key plus older keys still published; thread-safe."""

    def __init__(self, initial: rsa.RSAPrivateKey | None = None) -> None:
        self._lock = threading.Lock()
        self._keys: list[RSAKey] = [_as_jwk(initial or new_rsa_key())]  # newest first
        self._foreign: RSAKey | None = None

    @property
    def current(self) -> RSAKey:
        with self._lock:
            return self._keys[0]

    def signing_set(self) -> KeySet:
        """The current key as a set, so authlib's ID-token encoder writes its ``kid`` into the header."""
        return KeySet([self.current])

    def public_jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [k.as_dict(private=False) for k in self._keys]}

    def rotate(self, private_key: rsa.RSAPrivateKey | None = None) -> str:
        """Make a new current key; the previous ones stay published. Returns the new ``kid``."""
        key = _as_jwk(private_key or new_rsa_key())
        with self._lock:
            self._keys.insert(0, key)
        return str(key.kid)

    def drop_old(self) -> None:
        """Stop publishing every key but the current one."""
        with self._lock:
            del self._keys[1:]

    def tamper(self, id_token: str, mischief: Mischief) -> str:
        """Rebuild a correctly issued ID token the way ``mischief`` says; unchanged when it says nothing."""
        if not mischief.tampers_id_token:
            return id_token
        claims = json.loads(base64.urlsafe_b64decode(_pad(id_token.split(".")[1])))
        for name in mischief.drop_claims:
            claims.pop(name, None)
        claims.update(mischief.claim_overrides)
        current = self.current
        if mischief.alg_none:
            return f"{_b64url_json({'alg': 'none', 'typ': 'JWT'})}.{_b64url_json(claims)}."
        if mischief.hs256_with_public_key:
            signing_input = f"{_b64url_json({'alg': 'HS256', 'typ': 'JWT', 'kid': current.kid})}.{_b64url_json(claims)}"
            secret = current.as_pem(private=False)
            signature = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
            return f"{signing_input}.{_b64url(signature)}"
        key = self._foreign_key() if mischief.foreign_key else current
        return jwt.encode({"alg": ALG, "kid": str(current.kid)}, claims, key, [ALG])

    def _foreign_key(self) -> RSAKey:
        with self._lock:
            if self._foreign is None:
                self._foreign = _as_jwk(new_rsa_key())
            return self._foreign


def _pad(segment: str) -> str:
    return segment + "=" * (-len(segment) % 4)
