"""Detached signatures of the SAML HTTP-Redirect binding (SAML 2.0 Bindings §3.4.4.1).

The signature covers the octets ``SAMLRequest=...&RelayState=...&SigAlg=...`` exactly as they appear in
the query string, still URL-encoded. Re-encoding the decoded values (as pysaml2 does) fails for
senders that percent-encode differently; taking the raw parameters avoids that.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from urllib.parse import unquote_plus

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
_RSA_ALGS: dict[str, type[hashes.HashAlgorithm]] = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": hashes.SHA512,
}


class RedirectSignatureError(Exception):
    """The signature is missing, malformed, of a refused algorithm, or does not verify."""


#: parameters the binding defines; their names must stand literally in the query (Bindings §3.4.4.1)
PROTOCOL_PARAMS = frozenset({"SAMLRequest", "SAMLResponse", "RelayState", "SigAlg", "Signature"})


def raw_params(query_string: bytes) -> dict[str, bytes]:
    """The query's parameters, still URL-encoded.

    Refused as ambiguous: a parameter given twice, and a protocol parameter whose name is percent-encoded
    (``SAML%52equest``): a parser that decodes names would read it as a second ``SAMLRequest`` that the
    signature over the literal names does not cover.
    """
    params: dict[str, bytes] = {}
    for part in query_string.split(b"&"):
        if not part:
            continue
        key, _, value = part.partition(b"=")
        name = key.decode("ascii", "replace")
        decoded = unquote_plus(key.decode("utf-8", "replace"))
        if decoded != name and decoded in PROTOCOL_PARAMS:
            raise RedirectSignatureError(f"parameter name {decoded} is percent-encoded")
        if name in params:
            raise RedirectSignatureError(f"parameter {name} appears twice")
        params[name] = value
    return params


def decoded_params(query_string: bytes) -> dict[str, str]:
    """The same parameters as ``raw_params``, decoded: what is parsed is exactly what is signed."""
    return {name: unquote_plus(value.decode("utf-8", "replace")) for name, value in raw_params(query_string).items()}


def signed_octets(params: dict[str, bytes], message_param: str) -> bytes:
    """The octets that were signed: message, RelayState if present, SigAlg, in that order (§3.4.4.1)."""
    order = [message_param, "RelayState", "SigAlg"]
    return b"&".join(name.encode() + b"=" + params[name] for name in order if name in params)


def verify(query_string: bytes, sig_alg: str, signature_b64: str, certificates_pem: Iterable[str],
           message_param: str = "SAMLRequest", allow_sha1: bool = False) -> None:
    """Raise ``RedirectSignatureError`` unless one of ``certificates_pem`` verifies the signature."""
    hash_cls = _RSA_ALGS.get(sig_alg)
    if hash_cls is None and sig_alg == RSA_SHA1 and allow_sha1:
        hash_cls = hashes.SHA1
    if hash_cls is None:
        raise RedirectSignatureError(f"signature algorithm {sig_alg!r} is not accepted")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RedirectSignatureError("the Signature parameter is not base64") from exc
    octets = signed_octets(raw_params(query_string), message_param)
    for pem in certificates_pem:
        public_key = x509.load_pem_x509_certificate(pem.encode()).public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            continue
        try:
            public_key.verify(signature, octets, padding.PKCS1v15(), hash_cls())
            return
        except InvalidSignature:
            continue
    raise RedirectSignatureError("no registered signing certificate verifies the signature")


def pem_from_base64(cert_b64: str) -> str:
    body = "".join(cert_b64.split())
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"
