"""A software WebAuthn authenticator with its client (the browser's part), for the passkey tests (issue 17).

``create`` answers ``navigator.credentials.create()`` options, ``get`` answers ``navigator.credentials.get()``
options, both in the JSON shape of WebAuthn Level 3 §5.1.8 / §5.1.10 (``toJSON()``: binary values base64url) that
a broker page posts back. What it builds is the standard's own:

- clientDataJSON (§5.8.1): ``type`` (``webauthn.create`` / ``webauthn.get``), ``challenge`` (from the options),
  ``origin`` (the page's, given by the caller), ``crossOrigin`` false;
- authenticator data (§6.1): SHA-256 of the RP ID, flags UP (bit 0), UV (bit 2), AT (bit 6, registration only),
  the signature counter (32-bit big-endian), and on registration the attested credential data (§6.5.2): an all-zero
  AAGUID, the credential ID's length (16-bit big-endian), the credential ID, the public key as a COSE_Key
  (RFC 9053 §7.1.1: EC2, P-256, ES256);
- the attestation object (§6.5.4) ``{"fmt": "none", "attStmt": {}, "authData": ...}`` in CBOR;
- the assertion signature (§6.3.3 step 11): ECDSA P-256 SHA-256, DER-encoded, over
  ``authenticatorData || SHA-256(clientDataJSON)``.

Every credential is discoverable (it keeps the RP ID and the user handle). Arguments make it misbehave: another RP
ID than the options', no UV flag, a chosen signature counter (one that goes back), an existing credential offered
again at registration, another user handle; the origin is always the caller's (a wrong one is a phishing page).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

FLAG_UP = 0x01
FLAG_UV = 0x04
FLAG_BE = 0x08
FLAG_BS = 0x10
FLAG_AT = 0x40
AAGUID = bytes(16)
ES256 = -7


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftCredential:
    credential_id: bytes
    private_key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0

    def cose_key(self) -> bytes:
        """The public key as a COSE_Key (RFC 9052 §7, RFC 9053 §7.1.1): kty EC2, alg ES256, crv P-256, x, y."""
        numbers = self.private_key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: ES256, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})


class NotAllowed(Exception):
    """What the browser's ``NotAllowedError`` / ``InvalidStateError`` would be: the authenticator refuses."""


@dataclass
class SoftAuthenticator:
    #: how much the signature counter grows a use; 0: an authenticator without a counter (always 0)
    counter_step: int = 1
    #: a synced (multi-device) passkey store, as a phone's or a password manager's: the flags BE and BS (§6.1.3)
    synced: bool = False
    credentials: dict[bytes, SoftCredential] = field(default_factory=dict)

    def _backup_flags(self) -> int:
        return FLAG_BE | FLAG_BS if self.synced else 0

    def create(self, options_json: str, origin: str, *, rp_id: str | None = None, user_verified: bool = True,
               reuse: bytes | None = None) -> str:
        """The registration response to ``options_json`` from a page of ``origin``. ``rp_id``: hash this RP ID
        instead of the options'; ``user_verified``: False leaves the UV flag off; ``reuse``: offer this existing
        credential again (a real authenticator would refuse when the options exclude it; this one does too)."""
        options = json.loads(options_json)
        if not any(param.get("alg") == ES256 for param in options["pubKeyCredParams"]):
            raise NotAllowed("the options do not accept ES256")
        excluded = {unb64url(item["id"]) for item in options.get("excludeCredentials", [])}
        options_rp_id = options["rp"].get("id") or _host(origin)
        if excluded & {cid for cid, cred in self.credentials.items() if cred.rp_id == options_rp_id}:
            raise NotAllowed("a credential of this authenticator is excluded (InvalidStateError)")
        if reuse is not None:
            credential = self.credentials[reuse]
        else:
            credential = SoftCredential(secrets.token_bytes(32), ec.generate_private_key(ec.SECP256R1()),
                                        options_rp_id, unb64url(options["user"]["id"]))
            self.credentials[credential.credential_id] = credential
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        flags = FLAG_UP | FLAG_AT | (FLAG_UV if user_verified else 0) | self._backup_flags()
        auth_data = (hashlib.sha256((rp_id or options_rp_id).encode()).digest() + bytes([flags])
                     + struct.pack(">I", credential.sign_count) + AAGUID
                     + struct.pack(">H", len(credential.credential_id)) + credential.credential_id
                     + credential.cose_key())
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return json.dumps({
            "id": b64url(credential.credential_id),
            "rawId": b64url(credential.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": {"clientDataJSON": b64url(client_data), "attestationObject": b64url(attestation),
                         "transports": ["internal", "hybrid"]},
            "clientExtensionResults": {},
        })

    def get(self, options_json: str, origin: str, *, rp_id: str | None = None, user_verified: bool = True,
            sign_count: int | None = None, credential_id: bytes | None = None,
            user_handle: bytes | bool = True) -> str:
        """The assertion answering ``options_json`` from a page of ``origin``: with ``credential_id``, or the first
        allowed credential of this authenticator, or (an empty allow list) its first discoverable credential for
        the RP ID. ``sign_count``: the counter to report instead of the next one; ``user_handle``: True the
        credential's, False none, or these bytes."""
        options = json.loads(options_json)
        options_rp_id = options.get("rpId") or _host(origin)
        allowed = [unb64url(item["id"]) for item in options.get("allowCredentials", [])]
        if credential_id is None:
            mine = [cid for cid in (allowed or list(self.credentials))
                    if cid in self.credentials and self.credentials[cid].rp_id == options_rp_id]
            if not mine:
                raise NotAllowed("no credential of this authenticator is allowed")
            credential_id = mine[0]
        credential = self.credentials[credential_id]
        if sign_count is None:
            credential.sign_count += self.counter_step
            sign_count = credential.sign_count
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        flags = FLAG_UP | (FLAG_UV if user_verified else 0) | self._backup_flags()
        auth_data = (hashlib.sha256((rp_id or options_rp_id).encode()).digest() + bytes([flags])
                     + struct.pack(">I", sign_count))
        signature = credential.private_key.sign(auth_data + hashlib.sha256(client_data).digest(),
                                                ec.ECDSA(hashes.SHA256()))
        handle = credential.user_handle if user_handle is True else (user_handle or None)
        response: dict[str, Any] = {"clientDataJSON": b64url(client_data), "authenticatorData": b64url(auth_data),
                                    "signature": b64url(signature)}
        if isinstance(handle, bytes):
            response["userHandle"] = b64url(handle)
        return json.dumps({
            "id": b64url(credential.credential_id),
            "rawId": b64url(credential.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": response,
            "clientExtensionResults": {},
        })

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False},
                          separators=(",", ":")).encode()


def _host(origin: str) -> str:
    return origin.split("://", 1)[-1].split(":", 1)[0]
