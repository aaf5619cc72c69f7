"""The one enveloped-signature profile the broker verifies, on SAML messages and on metadata documents.

SAML Core §5.4 (and the same rules for signed metadata, SAML Metadata §3): exactly one ``ds:SignedInfo`` with
exclusive canonicalization; a signature and a digest algorithm from the allow-lists of
``broker.saml.xmlsec_backend`` (SHA-1 refused); exactly one ``ds:Reference``, whose URI names the signed element
(the caller says which URIs do); the enveloped-signature transform, optionally with exclusive c14n, and nothing
else (no XPath, no XSLT); no ``ds:Object``. Then :func:`verify_with` checks the signature with a key the caller
took from configuration or metadata, never from ``ds:KeyInfo``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import xmlsec

from broker.saml.xmlsec_backend import (
    C14N_METHODS,
    DIGEST_METHODS,
    DS_NS,
    ENVELOPED,
    REFERENCE_TRANSFORMS,
    SHA1_DIGEST,
    SHA1_SIGNATURE,
    SIGNATURE_METHODS,
)


class ProfileViolation(ValueError):
    """The signature does not follow the profile; the message says what (operator detail)."""


def _ds(local: str) -> str:
    return f"{{{DS_NS}}}{local}"


def _one(parent: Any, local: str) -> Any:
    nodes = parent.findall(_ds(local))
    if len(nodes) != 1:
        raise ProfileViolation(f"expected exactly one ds:{local}, found {len(nodes)}")
    return nodes[0]


def check_signed_info(signature: Any, reference_uris: Collection[str], target: str) -> tuple[Any, Any]:
    """The (signature method, digest method) transforms of a signature that follows the profile; the Reference
    must be one of ``reference_uris`` (``target`` names the signed element in the message)."""
    signed_info = _one(signature, "SignedInfo")
    c14n = _one(signed_info, "CanonicalizationMethod").get("Algorithm")
    if c14n not in C14N_METHODS:
        raise ProfileViolation(f"canonicalization {c14n!r} is not exclusive c14n")
    sig_alg = _one(signed_info, "SignatureMethod").get("Algorithm")
    if sig_alg not in SIGNATURE_METHODS:
        sha1 = " (SHA-1 is refused)" if sig_alg in SHA1_SIGNATURE else ""
        raise ProfileViolation(f"signature algorithm {sig_alg!r} is not allowed{sha1}")
    reference = _one(signed_info, "Reference")
    if reference.get("URI") not in reference_uris:
        raise ProfileViolation(f"the reference {reference.get('URI')!r} does not point to {target}")
    transforms = [t.get("Algorithm") for t in reference.iterfind(f"{_ds('Transforms')}/{_ds('Transform')}")]
    if ENVELOPED not in transforms or len(transforms) > 2 or not set(transforms) <= REFERENCE_TRANSFORMS.keys():
        raise ProfileViolation(f"reference transforms {transforms} are not enveloped-signature + exclusive c14n")
    digest_alg = _one(reference, "DigestMethod").get("Algorithm")
    if digest_alg not in DIGEST_METHODS:
        sha1 = " (SHA-1 is refused)" if digest_alg in SHA1_DIGEST else ""
        raise ProfileViolation(f"digest algorithm {digest_alg!r} is not allowed{sha1}")
    if signature.find(_ds("Object")) is not None:
        raise ProfileViolation("a ds:Object inside the signature is not allowed")
    return SIGNATURE_METHODS[sig_alg], DIGEST_METHODS[digest_alg]


def verify_with(signature: Any, key: xmlsec.Key, methods: tuple[Any, Any]) -> None:
    """Verify ``signature`` with ``key`` only (raw certificates are the only key data enabled, so nothing in
    ``ds:KeyInfo`` can provide one) and only the transforms of the profile; ``xmlsec.Error`` when it fails."""
    sig_method, digest_method = methods
    ctx = xmlsec.SignatureContext()
    ctx.key = key
    ctx.set_enabled_key_data([xmlsec.constants.KeyDataRawX509Cert])
    for transform in (*REFERENCE_TRANSFORMS.values(), digest_method):
        ctx.enable_reference_transform(transform)
    for transform in (*C14N_METHODS.values(), sig_method):
        ctx.enable_signature_transform(transform)
    ctx.verify(signature)
