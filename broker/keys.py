"""The broker's key ring: its signing key and certificate, kept in ``certs/``.

Private keys are written with mode 0600 and never leave the instance folder. Key rotation (a next key
published before use) belongs to the production work; this module already keeps the files in one place
and exposes what the adapters need: file paths for pysaml2, the certificate for metadata, the public
key for JWKS.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

SIGNING_KEY = "signing.key"
SIGNING_CERT = "signing.crt"
PRIVATE_MODE = 0o600


@dataclass(frozen=True)
class KeyRing:
    key_file: Path
    cert_file: Path

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
            raise KeyRingError(f"{path} is missing; run 'broker init' or 'broker keys generate' to create it")
    if os.name == "posix" and key_file.stat().st_mode & 0o077:
        raise KeyRingError(f"{key_file} is readable by other users; run: chmod 600 {key_file}")
    try:
        serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        x509.load_pem_x509_certificate(cert_file.read_bytes())
    except ValueError as exc:
        raise KeyRingError(f"{key_file} or {cert_file} is not a PEM key/certificate: {exc}") from exc
    return KeyRing(key_file=key_file, cert_file=cert_file)


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


def generate_keyring(certs_dir: Path, common_name: str, *, bits: int = 3072, years: int = 5) -> KeyRing:
    """A new RSA signing key and its self-signed certificate, the key file written with mode 0600."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    cert = self_signed(key, common_name, timedelta(days=365 * years))
    write_private(certs_dir / SIGNING_KEY, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (certs_dir / SIGNING_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return KeyRing(key_file=certs_dir / SIGNING_KEY, cert_file=certs_dir / SIGNING_CERT)
