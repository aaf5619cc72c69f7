"""The broker's key ring, kept in ``certs/``: the RSA signing key and certificate (SAML, and RS256 for JWTs),
an EC P-256 key for ES256 JWTs, and optionally the *next* keys in ``certs/next/``.

    certs/signing.key          RSA, PKCS8 PEM, 0600: SAML signatures and RS256
    certs/signing.crt          its self-signed certificate (SAML metadata)
    certs/oidc-es256.key       EC P-256, PKCS8 PEM, 0600: ES256
    certs/next/...             optional, the same three files: published (JWKS, SAML metadata), never signing
    certs/previous/...         optional, the keys before the last switch: still published, so what they signed
                               before the switch still verifies, until they are retired

Private keys are written with mode 0600 and never leave the instance folder. Rotation (``broker keys rotate``,
``broker.keys.rotation``) stages new keys in ``next/``, switches them in after relying parties have seen them,
and retires ``previous/`` after a grace period. This module exposes what the adapters need: file paths for
pysaml2, the certificates for metadata, the JWT keys (``broker.keys.jwt`` signs with them and publishes the JWKS).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from broker.keys.jwt import JwtKey as JwtKey
from broker.keys.jwt import jwt_key

SIGNING_KEY = "signing.key"
SIGNING_CERT = "signing.crt"
ES256_KEY = "oidc-es256.key"
#: the key upstream SAML IdPs encrypt assertions to (published in the broker's SP metadata, use="encryption")
ENCRYPTION_KEY = "saml-encryption.key"
ENCRYPTION_CERT = "saml-encryption.crt"
NEXT_DIR = "next"
PREVIOUS_DIR = "previous"
PRIVATE_MODE = 0o600
#: the command that creates a missing ES256 key in an existing instance
ES256_COMMAND = "broker keys generate-es256"


@dataclass(frozen=True)
class KeyRing:
    key_file: Path
    cert_file: Path
    #: the JWT signing keys, active first, then the next ones
    jwt_keys: tuple[JwtKey, ...] = ()
    #: the SAML encryption key pair; without one (an instance from before it existed) the signing pair serves
    encryption_key_file: Path | None = None
    encryption_cert_file: Path | None = None
    #: certificates published beside the active one (next, then previous): SAML metadata lists them all
    published_cert_files: tuple[Path, ...] = ()

    @property
    def decryption_key_files(self) -> tuple[Path, ...]:
        """Keys tried on an EncryptedAssertion: the encryption key, then the signing key."""
        return (*((self.encryption_key_file,) if self.encryption_key_file else ()), self.key_file)

    @property
    def encryption_cert(self) -> Path:
        return self.encryption_cert_file or self.cert_file

    def signing_key(self, alg: str) -> JwtKey:
        """The active key for ``alg``; ``KeyError`` when there is none."""
        for key in self.jwt_keys:
            if key.active and key.alg == alg:
                return key
        raise KeyError(f"no active {alg} signing key")

    @property
    def cert_pem(self) -> str:
        return self.cert_file.read_text()

    def cert_base64(self) -> str:
        """The certificate as base64 DER, the form of ds:X509Certificate (XMLDSig §4.4.4)."""
        cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")


class KeyRingError(Exception):
    """A key file is missing, unreadable or too open."""


def load_keyring(certs_dir: Path) -> KeyRing:
    key_file, cert_file = certs_dir / SIGNING_KEY, certs_dir / SIGNING_CERT
    for path in (key_file, cert_file):
        if not path.is_file():
            raise KeyRingError(f"{path} is missing; run 'broker init' to create it")
    _check_mode(key_file)
    try:
        serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        x509.load_pem_x509_certificate(cert_file.read_bytes())
    except ValueError as exc:
        raise KeyRingError(f"{key_file} or {cert_file} is not a PEM key/certificate: {exc}") from exc
    if not (certs_dir / ES256_KEY).is_file():
        raise KeyRingError(f"{certs_dir / ES256_KEY} (the ES256 key for OpenID Connect) is missing; "
                           f"run '{ES256_COMMAND}' to create it")
    encryption: tuple[Path | None, Path | None] = (None, None)
    if (certs_dir / ENCRYPTION_KEY).is_file() and (certs_dir / ENCRYPTION_CERT).is_file():
        _check_mode(certs_dir / ENCRYPTION_KEY)
        encryption = (certs_dir / ENCRYPTION_KEY, certs_dir / ENCRYPTION_CERT)
    published = tuple(path for folder in (NEXT_DIR, PREVIOUS_DIR)
                      if (path := certs_dir / folder / SIGNING_CERT).is_file())
    return KeyRing(key_file=key_file, cert_file=cert_file, jwt_keys=_jwt_keys(certs_dir),
                   encryption_key_file=encryption[0], encryption_cert_file=encryption[1],
                   published_cert_files=published)


def generate_encryption_pair(certs_dir: Path, common_name: str, *, bits: int = 3072, years: int = 5) -> Path:
    """A new RSA key and certificate for SAML assertion encryption (``saml-encryption.key``, mode 0600)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    cert = self_signed(key, common_name + " (encryption)", timedelta(days=365 * years))
    write_private(certs_dir / ENCRYPTION_KEY, _pkcs8(key))
    (certs_dir / ENCRYPTION_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return certs_dir / ENCRYPTION_KEY


def _check_mode(path: Path) -> None:
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise KeyRingError(f"{path} is readable by other users; run: chmod 600 {path}")


def _jwt_keys(certs_dir: Path) -> tuple[JwtKey, ...]:
    """The active keys (both required), then the next and the previous keys that exist (published, not signing)."""
    keys = []
    for folder, active in ((certs_dir, True), (certs_dir / NEXT_DIR, False), (certs_dir / PREVIOUS_DIR, False)):
        for name, alg in ((SIGNING_KEY, "RS256"), (ES256_KEY, "ES256")):
            path = folder / name
            if not active and not path.exists():
                continue
            _check_mode(path)
            try:
                keys.append(jwt_key(path.read_bytes(), alg, active=active))
            except (OSError, ValueError) as exc:
                raise KeyRingError(f"{path} is not usable as the {alg} key: {exc}") from exc
    return tuple(keys)


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 from the start (no window in which it is world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, PRIVATE_MODE)


def self_signed(key: CertificateIssuerPrivateKeyTypes, common_name: str, valid_for: timedelta) -> x509.Certificate:
    """A self-signed certificate for ``key`` (SAML metadata pins certificates; no CA is involved)."""
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + valid_for)
        .sign(key, hashes.SHA256())
    )


def _pkcs8(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def generate_es256_key(certs_dir: Path) -> Path:
    """A new EC P-256 key for ES256 in ``certs_dir/oidc-es256.key`` (mode 0600); replaces an existing one."""
    path = certs_dir / ES256_KEY
    write_private(path, _pkcs8(ec.generate_private_key(ec.SECP256R1())))
    return path


def generate_keyring(certs_dir: Path, common_name: str, *, bits: int = 3072, years: int = 5) -> KeyRing:
    """A new RSA signing key and its self-signed certificate, a new ES256 key and a SAML encryption pair; key
    files with mode 0600."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    cert = self_signed(key, common_name, timedelta(days=365 * years))
    write_private(certs_dir / SIGNING_KEY, _pkcs8(key))
    (certs_dir / SIGNING_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    generate_es256_key(certs_dir)
    generate_encryption_pair(certs_dir, common_name, bits=bits, years=years)
    return load_keyring(certs_dir)
