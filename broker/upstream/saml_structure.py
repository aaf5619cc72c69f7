"""Parsing, structure and signatures of an upstream SAML Response (the SP role), built on python-xmlsec and lxml.

Trusted: the IdP's metadata certificates. Untrusted: every byte of the message, including its ``ds:KeyInfo``.

The wrapping defence is "see what is signed" (as in the SAML V2.0 security considerations, XML signature
wrapping): the signature must be the direct child of the element it signs, with one Reference pointing at that
element's ``ID``, IDs are unique in the document, and the caller reads values only from the element node that
was verified, never by searching the document again. The structure is checked strictly besides: one Response
root, at most one assertion in the whole document, signatures only where SAML puts them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from collections import OrderedDict
from typing import Any, Final

import xmlsec
from lxml import etree  # type: ignore[import-untyped]
from saml2.sigver import SignatureError

from broker.saml.signature_profile import ProfileViolation, check_signed_info, verify_with
from broker.saml.xmlsec_backend import DS_NS, NCNAME, parse_hardened

SAMLP_NS: Final = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML_NS: Final = "urn:oasis:names:tc:SAML:2.0:assertion"
RESPONSE: Final = f"{{{SAMLP_NS}}}Response"
ASSERTION: Final = f"{{{SAML_NS}}}Assertion"
ENCRYPTED_ASSERTION: Final = f"{{{SAML_NS}}}EncryptedAssertion"
SIGNATURE: Final = f"{{{DS_NS}}}Signature"


class StructureError(Exception):
    """The message is refused; ``str(exc)`` is the operator detail."""


def parse_document(data: bytes) -> Any:
    """Parse with the hardened parser of ``broker.saml.xmlsec_backend``: no DTD, no entities, no network.

    Any DOCTYPE is refused (XXE, billion laughs: SAML bindings §3.5 messages never need one).
    """
    try:
        return parse_hardened(data)
    except SignatureError as exc:
        raise StructureError(str(exc)) from exc


def check_unique_ids(root: Any) -> None:
    """Every ``ID`` attribute in the document is a unique xs:ID (SAML core §1.3.4; XMLDSig same-document URIs)."""
    seen: set[str] = set()
    for element in root.iter(etree.Element):
        value = element.get("ID")
        if value is None:
            continue
        if value in seen:
            raise StructureError(f"duplicate ID {value!r} in the document")
        if not NCNAME.fullmatch(value):
            raise StructureError(f"ID {value!r} is not an xs:ID")
        seen.add(value)


def the_assertion(root: Any) -> Any:
    """The one assertion of the Response: a direct ``saml:Assertion`` or ``saml:EncryptedAssertion`` child.

    SAML profiles §4.1.4.2 allows several assertions; the broker accepts exactly one and refuses any assertion
    elsewhere in the document (Extensions, Advice, ds:Object: the places signature wrapping hides one).
    """
    children = [c for c in root if c.tag in (ASSERTION, ENCRYPTED_ASSERTION)]
    if len(children) != 1:
        raise StructureError(f"expected exactly one assertion in the Response, found {len(children)}")
    holder = children[0]
    # after decryption the Assertion sits inside its EncryptedAssertion: that pair counts once
    nested = sum(1 for e in root.iter(ASSERTION, ENCRYPTED_ASSERTION) if e.getparent() is not holder)
    if nested != 1:
        raise StructureError(f"the document holds {nested} assertions, only one direct child is allowed")
    return children[0]


def check_signature_places(root: Any, assertion: Any | None) -> None:
    """``ds:Signature`` only as the direct child of the Response or of the assertion (SAML core §5.3)."""
    allowed = {root} | ({assertion} if assertion is not None else set())
    for signature in root.iter(SIGNATURE):
        if signature.getparent() not in allowed:
            raise StructureError(f"a ds:Signature inside {signature.getparent().tag} is not allowed")


def signature_of(element: Any) -> Any | None:
    """The direct ``ds:Signature`` child of ``element``, None when unsigned; more than one is refused."""
    signatures = element.findall(SIGNATURE)
    if len(signatures) > 1:
        raise StructureError(f"{element.tag} carries {len(signatures)} signatures")
    return signatures[0] if signatures else None


class _Keys:
    """Certificates (base64 DER) loaded once; LRU so that a metadata refresh does not grow it forever."""

    def __init__(self, size: int = 64) -> None:
        self._lock = threading.Lock()
        self._size = size
        self._keys: OrderedDict[bytes, xmlsec.Key] = OrderedDict()

    def get(self, cert_b64: str) -> xmlsec.Key:
        try:
            der = base64.b64decode("".join(cert_b64.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise StructureError("a metadata certificate is not base64") from exc
        digest = hashlib.sha256(der).digest()
        with self._lock:
            key = self._keys.get(digest)
            if key is not None:
                self._keys.move_to_end(digest)
                return key
        try:
            key = xmlsec.Key.from_memory(der, xmlsec.constants.KeyDataFormatCertDer)
        except xmlsec.Error as exc:
            raise StructureError(f"a metadata certificate is unusable: {exc}") from exc
        with self._lock:
            self._keys[digest] = key
            while len(self._keys) > self._size:
                self._keys.popitem(last=False)
        return key


_KEYS = _Keys()


def verify_enveloped(element: Any, signature: Any, certs: tuple[str, ...]) -> None:
    """Verify the enveloped signature of ``element`` with one of ``certs`` (metadata only, SAML core §5.4).

    ``ds:KeyInfo`` in the message is never used: the key is preset and only raw certificates are enabled as key
    data, so nothing in the message can provide a key. Raises :class:`StructureError` when no cert verifies.
    """
    element_id = element.get("ID")
    if not element_id:
        raise StructureError(f"the signed {element.tag} has no ID")
    if not certs:
        raise StructureError("no signing certificate in the IdP's metadata")
    try:
        # SAML core §5.4.2: exactly one Reference, whose URI is "#" + the ID of the signed element
        methods = check_signed_info(signature, {f"#{element_id}"}, f"#{element_id}")
    except ProfileViolation as exc:
        raise StructureError(str(exc)) from exc
    # IDs are unique (check_unique_ids), so the Reference can only resolve to ``element``.
    xmlsec.tree.add_ids(element, ["ID"])
    failures = []
    for cert in certs:
        try:
            verify_with(signature, _KEYS.get(cert), methods)
        except xmlsec.Error as exc:
            failures.append(str(exc))
            continue
        return
    raise StructureError(f"the signature of {element.tag} {element_id!r} does not verify with the metadata "
                         f"certificates ({'; '.join(failures)})")
