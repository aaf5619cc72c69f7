"""A throw-away certificate authority for the test run, and TLS for the test servers.

``throwaway_ca()`` makes, once per test process, a CA certificate and one server certificate for
``127.0.0.1`` and ``localhost`` (subjectAltName, RFC 5280 §4.2.1.6), both valid from an hour ago for a day
(relative to now, so no test depends on today's date), with fresh P-256 keys. The files live in a temporary
folder removed when the process ends. Nothing outside the test run trusts this CA: the scripted browser
verifies against it (``Browser(verify=...)``), plain ``requests`` calls trust it inside ``trusted_by_requests``,
and Chromium trusts exactly this server key (``spki_sha256``).
"""

from __future__ import annotations

import atexit
import base64
import functools
import hashlib
import ipaddress
import os
import shutil
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REQUESTS_BUNDLE_ENV = "REQUESTS_CA_BUNDLE"


@dataclass(frozen=True)
class ThrowawayCa:
    """The CA certificate (``ca_file``, what clients trust) and the server's certificate and key."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    #: base64 of SHA-256 over the server certificate's SubjectPublicKeyInfo (Chromium's
    #: ``--ignore-certificate-errors-spki-list`` format: trust for this one key only)
    spki_sha256: str

    def server_context(self) -> ssl.SSLContext:
        """A TLS server context with the server certificate (chain: server, CA), TLS 1.2 at least."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "civic-broker tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _make(folder: Path) -> ThrowawayCa:
    now = datetime.now(UTC)
    not_before, not_after = now - timedelta(hours=1), now + timedelta(days=1)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("civic-broker throw-away test CA")
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_cert = (
        x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca_name)
        .public_key(server_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca_cert.public_bytes(pem))
    cert_file.write_bytes(server_cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    key_file.write_bytes(server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    key_file.chmod(0o600)
    spki = server_key.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    return ThrowawayCa(ca_file, cert_file, key_file, base64.b64encode(hashlib.sha256(spki).digest()).decode())


@functools.cache
def throwaway_ca() -> ThrowawayCa:
    """The test process's CA, made on first use."""
    folder = Path(tempfile.mkdtemp(prefix="broker-test-ca-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return _make(folder)


@contextmanager
def trusted_by_requests(ca: ThrowawayCa) -> Iterator[None]:
    """Plain ``requests`` calls (an app's back channel in a test) verify https against ``ca`` meanwhile, as if
    it were in the system's trust store (``REQUESTS_CA_BUNDLE``); the previous value comes back after."""
    before = os.environ.get(REQUESTS_BUNDLE_ENV)
    os.environ[REQUESTS_BUNDLE_ENV] = str(ca.ca_file)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(REQUESTS_BUNDLE_ENV, None)
        else:
            os.environ[REQUESTS_BUNDLE_ENV] = before
