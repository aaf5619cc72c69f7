"""In-process XML signatures for pysaml2, built on python-xmlsec.

pysaml2's stock backend spawns ``xmlsec1`` for every signature and verification. :class:`InProcessXmlSecBackend`
signs and verifies with ``xmlsec.SignatureContext`` and inherits the binary code for encryption/decryption.

Verification follows the SAML core §5.4 profile, enforced here: the key comes only from ``cert_file``, never from
``ds:KeyInfo``; the signature is the single direct ``ds:Signature`` child of the one element whose ``ID`` is
``node_id``; it has exactly one ``ds:Reference`` with URI ``#<node_id>``; algorithms come from an allow-list
(SHA-1 only with ``allow_sha1=True``); documents with a DOCTYPE are refused. Install with
:func:`install_in_process_backend`.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import xmlsec
from lxml import etree  # type: ignore[import-untyped]
from saml2 import SamlBase
from saml2.sigver import CryptoBackendXmlSec1, SecurityContext, SignatureError, SigverError, get_xmlsec_binary

from broker.saml.key_cache import KeyCache, load_key, read_file

if TYPE_CHECKING:
    from xmlsec.constants import __Transform as _Transform

#: the allow-lists and the hardened parser are shared with the SP role (``broker.upstream.saml_structure``) and
#: the metadata verifier (``broker.registry.metadata_signature``), so that every signature follows one policy
__all__ = ["C14N_METHODS", "DIGEST_METHODS", "ENVELOPED", "NCNAME", "REFERENCE_TRANSFORMS", "SHA1_DIGEST",
           "SHA1_SIGNATURE", "SIGNATURE_METHODS", "DenyResolver", "ExternalResourceRefused", "InProcessXmlSecBackend",
           "install_in_process_backend", "parse_hardened"]

DS_NS: Final = "http://www.w3.org/2000/09/xmldsig#"
_C = xmlsec.constants
_MORE = "http://www.w3.org/2001/04/xmldsig-more#"
ENVELOPED: Final = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
# Algorithm URI -> python-xmlsec transform. Anything not listed is refused.
C14N_METHODS: Final[Mapping[str, _Transform]] = {
    "http://www.w3.org/2001/10/xml-exc-c14n#": _C.TransformExclC14N,
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments": _C.TransformExclC14NWithComments,
}
REFERENCE_TRANSFORMS: Final[Mapping[str, _Transform]] = {ENVELOPED: _C.TransformEnveloped, **C14N_METHODS}
SIGNATURE_METHODS: Final[Mapping[str, _Transform]] = {
    f"{_MORE}rsa-sha256": _C.TransformRsaSha256,
    f"{_MORE}rsa-sha384": _C.TransformRsaSha384,
    f"{_MORE}rsa-sha512": _C.TransformRsaSha512,
    f"{_MORE}ecdsa-sha256": _C.TransformEcdsaSha256,
    f"{_MORE}ecdsa-sha384": _C.TransformEcdsaSha384,
    f"{_MORE}ecdsa-sha512": _C.TransformEcdsaSha512,
}
DIGEST_METHODS: Final[Mapping[str, _Transform]] = {
    "http://www.w3.org/2001/04/xmlenc#sha256": _C.TransformSha256,
    f"{_MORE}sha384": _C.TransformSha384,
    "http://www.w3.org/2001/04/xmlenc#sha512": _C.TransformSha512,
}
SHA1_SIGNATURE: Final[Mapping[str, _Transform]] = {"http://www.w3.org/2000/09/xmldsig#rsa-sha1": _C.TransformRsaSha1}
SHA1_DIGEST: Final[Mapping[str, _Transform]] = {"http://www.w3.org/2000/09/xmldsig#sha1": _C.TransformSha1}
_CERT_FORMATS: Final[Mapping[str, int]] = {"pem": _C.KeyDataFormatCertPem, "der": _C.KeyDataFormatCertDer}
# xs:ID is an NCName; refusing anything else also keeps "#xpointer(...)" URIs out.
NCNAME: Final = re.compile(r"[^\W\d][\w.\-]*")


def _ds(local: str) -> str:
    return f"{{{DS_NS}}}{local}"


class ExternalResourceRefused(Exception):
    pass


class DenyResolver(etree.Resolver):  # type: ignore[misc]
    """libxml2 opens external DTDs and parameter entities even with load_dtd=False: refuse every load."""

    def resolve(self, url: str, pubid: str | None, context: object) -> None:
        raise ExternalResourceRefused(url)


_parsers = threading.local()


def parse_hardened(data: str | bytes) -> Any:
    """Parse with a hardened parser, one per thread (lxml parsers must not be shared between threads)."""
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            collect_ids=False,  # else libxml2 registers xml:id attributes as IDs a Reference could resolve to
        )
        parser.resolvers.add(DenyResolver())
        _parsers.parser = parser
    try:
        root = etree.fromstring(data.encode("utf-8") if isinstance(data, str) else data, parser)
    except ExternalResourceRefused as exc:
        raise SignatureError(f"document has a DOCTYPE referring to an external resource ({exc}); refused") from exc
    except etree.XMLSyntaxError as exc:
        raise SignatureError(f"document is not well-formed XML: {exc}") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise SignatureError("document carries a DOCTYPE (DTD or entity declarations); refused")
    return root


class InProcessXmlSecBackend(CryptoBackendXmlSec1):  # type: ignore[misc]
    """pysaml2 crypto backend: in-process XML signatures, the ``xmlsec1`` binary for encryption/decryption.

    ``xmlsec_binary`` is only used by the inherited encrypt/decrypt methods (``None``: looked up on the PATH,
    left empty when absent). ``allow_sha1`` is a legacy opt-in admitting rsa-sha1 and sha1 digests, when
    verifying and when signing.
    """

    def __init__(self, xmlsec_binary: str | None = None, *, allow_sha1: bool = False, delete_tmpfiles: bool = True):
        if xmlsec_binary is None:
            try:
                xmlsec_binary = str(get_xmlsec_binary())
            except SigverError:
                xmlsec_binary = ""
        super().__init__(xmlsec_binary, delete_tmpfiles=delete_tmpfiles)
        self.allow_sha1: Final = allow_sha1
        self._signature_methods = {**SIGNATURE_METHODS, **(SHA1_SIGNATURE if allow_sha1 else {})}
        self._digest_methods = {**DIGEST_METHODS, **(SHA1_DIGEST if allow_sha1 else {})}
        self._keys = KeyCache()

    def sign_statement(
        self, statement: str | bytes | SamlBase, node_name: str, key_file: str, node_id: str | None
    ) -> str:
        """Sign the ``ds:Signature`` template that is the direct child of element ``node_id``; return the document."""
        return self.sign_statements(statement, ((node_name, node_id),), key_file)

    def sign_statements(
        self, statement: str | bytes | SamlBase, parts: Sequence[tuple[str, str | None]], key_file: str
    ) -> str:
        """Sign the templates of ``parts`` ((node name, ID) pairs) in order on one tree: parsed once, serialised once.

        Inner elements come first (the Assertion, then the Response): a Reference's digest is taken over the element
        as it is when signing (XML-DSig Core §3.1.1), so the Response's covers the Assertion's finished signature, and
        signing an element inside (or equal to) one already signed would break that signature: refused.
        """
        if isinstance(statement, SamlBase):
            statement = str(statement)
        root = parse_hardened(statement)
        key = self._private_key(key_file)
        signed: list[Any] = []
        for node_name, wanted in parts:
            target, node_id = _target(root, node_name, wanted)
            if any(earlier is target or earlier in target.iterancestors() for earlier in signed):
                raise SignatureError(f"{node_name} {node_id!r} is, or lies inside, an element signed before it")
            signature = _signature_of(target)
            self._check_signed_info(signature, node_id)
            ctx = xmlsec.SignatureContext()
            ctx.key = key
            xmlsec.tree.add_ids(target, ["ID"])
            try:
                ctx.sign(signature)
            except xmlsec.Error as exc:
                raise SignatureError(f"signing {node_name} {node_id!r} failed: {exc}") from exc
            signed.append(target)
        document: bytes = etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")
        return document.decode("utf-8")

    def validate_signature(
        self, signedtext: str | bytes, cert_file: str, cert_type: str, node_name: str, node_id: str | None
    ) -> bool:
        """Return True if the signature of element ``node_id`` verifies with the key in ``cert_file``.

        Never returns False: raises :class:`saml2.sigver.SignatureError` (an ``XmlsecError``, which pysaml2's
        ``_check_signature`` catches to try the next certificate), like the binary backend.
        """
        root = parse_hardened(signedtext)
        target, node_id = _target(root, node_name, node_id)
        signature = _signature_of(target)
        sig_method, digest_method = self._check_signed_info(signature, node_id)
        if signature.find(_ds("Object")) is not None:
            raise SignatureError("a ds:Object inside the signature is not allowed in SAML")
        ctx = xmlsec.SignatureContext()
        ctx.key = self._certificate_key(cert_file, cert_type)
        # As `xmlsec1 --enabled-key-data raw-x509-cert`: no KeyInfo content may provide a key. (With the key
        # preset and no keys manager, xmlsec does not read KeyInfo at all; this keeps it so.)
        ctx.set_enabled_key_data([_C.KeyDataRawX509Cert])
        for transform in (*REFERENCE_TRANSFORMS.values(), digest_method):
            ctx.enable_reference_transform(transform)
        for transform in (*C14N_METHODS.values(), sig_method):
            ctx.enable_signature_transform(transform)
        xmlsec.tree.add_ids(target, ["ID"])
        try:
            ctx.verify(signature)
        except xmlsec.VerificationError as exc:
            raise SignatureError(f"signature of {node_name} {node_id!r} is invalid for {cert_file}") from exc
        except xmlsec.Error as exc:
            raise SignatureError(f"signature of {node_name} {node_id!r} could not be verified: {exc}") from exc
        return True

    def _private_key(self, key_file: str) -> xmlsec.Key:
        if not key_file:
            raise SignatureError("no signing key file given")
        path = os.path.abspath(key_file)
        try:
            st = os.stat(path)
        except OSError as exc:
            raise SignatureError(f"cannot read signing key {key_file!r}: {exc}") from exc
        cache_key = ("private", path, st.st_mtime_ns, st.st_size)
        return self._keys.get(cache_key, lambda: load_key(key_file, read_file(path), _C.KeyDataFormatPem))

    def _certificate_key(self, cert_file: str, cert_type: str) -> xmlsec.Key:
        fmt = _CERT_FORMATS.get((cert_type or "pem").lower())
        if fmt is None:
            raise SignatureError(f"unsupported certificate type {cert_type!r}")
        data = read_file(cert_file)
        # Keyed by content, not path: pysaml2 writes metadata certificates to a new temp file for every check.
        return self._keys.get(("cert", fmt, hashlib.sha256(data).digest()), lambda: load_key(cert_file, data, fmt))

    def _check_signed_info(self, signature: Any, node_id: str) -> tuple[_Transform, _Transform]:
        """Check SignedInfo against the SAML profile and the allow-lists; return the (signature, digest) transforms."""
        si = _only(signature, "SignedInfo")
        c14n = _only(si, "CanonicalizationMethod").get("Algorithm")
        if c14n not in C14N_METHODS:
            raise SignatureError(f"canonicalization {c14n!r} is not allowed")
        sig_alg = _only(si, "SignatureMethod").get("Algorithm")
        sig_method = self._signature_methods.get(sig_alg)
        if sig_method is None:
            raise SignatureError(f"signature algorithm {sig_alg!r} is not allowed{_sha1_hint(sig_alg)}")
        reference = _only(si, "Reference")
        if (uri := reference.get("URI")) != f"#{node_id}":
            raise SignatureError(f"reference URI {uri!r} does not point to the signed element #{node_id}")
        transforms = [t.get("Algorithm") for t in reference.findall(f"{_ds('Transforms')}/{_ds('Transform')}")]
        if ENVELOPED not in transforms or len(transforms) > 2 or not set(transforms) <= REFERENCE_TRANSFORMS.keys():
            raise SignatureError(f"reference transforms {transforms} are not enveloped-signature + exclusive c14n")
        digest_alg = _only(reference, "DigestMethod").get("Algorithm")
        digest_method = self._digest_methods.get(digest_alg)
        if digest_method is None:
            raise SignatureError(f"digest algorithm {digest_alg!r} is not allowed{_sha1_hint(digest_alg)}")
        return sig_method, digest_method


def _target(root: Any, node_name: str, node_id: str | None) -> tuple[Any, str]:
    """The one element with ``ID == node_id`` (no node_id: the root); it must be a ``node_name``."""
    namespace, _, local = node_name.rpartition(":")
    tag = f"{{{namespace}}}{local}"
    if not node_id:
        node_id = root.get("ID")
        if root.tag != tag or not node_id:
            raise SignatureError(f"no node id given and the document root is not a {node_name} with an ID")
    if not NCNAME.fullmatch(node_id):
        raise SignatureError(f"node id {node_id!r} is not a valid xs:ID")
    matches = root.xpath("//*[@ID=$v]", v=node_id)
    if len(matches) != 1:
        raise SignatureError(f"expected exactly one element with ID {node_id!r}, found {len(matches)}")
    if matches[0].tag != tag:
        raise SignatureError(f"the element with ID {node_id!r} is {matches[0].tag}, expected {tag}")
    return matches[0], node_id


def _signature_of(target: Any) -> Any:
    signatures = target.findall(_ds("Signature"))
    if len(signatures) != 1:
        raise SignatureError(f"expected one ds:Signature child of the signed element, found {len(signatures)}")
    return signatures[0]


def _only(parent: Any, local: str) -> Any:
    nodes = parent.findall(_ds(local))
    if len(nodes) != 1:
        raise SignatureError(f"expected exactly one ds:{local}, found {len(nodes)}")
    return nodes[0]


def _sha1_hint(algorithm: str | None) -> str:
    if algorithm in SHA1_SIGNATURE or algorithm in SHA1_DIGEST:
        return " (SHA-1 needs allow_sha1=True; to sign, set signing_algorithm/digest_algorithm in the pysaml2 config)"
    return ""


def install_in_process_backend(
    entity: object, *, allow_sha1: bool = False, include_metadata: bool = False
) -> InProcessXmlSecBackend:
    """Swap the crypto backend of a pysaml2 entity (``Server``, ``Saml2Client``: ``entity.sec``) or ``SecurityContext``.

    Signing and verification then run in-process; encryption keeps the entity's ``xmlsec1`` binary. With
    ``include_metadata=True`` the metadata store's own security context (signed remote/MDQ metadata) is switched
    too, so the stricter rules (e.g. no SHA-1) then apply to metadata signatures as well.
    """
    sec = entity if isinstance(entity, SecurityContext) else getattr(entity, "sec", None)
    if not isinstance(sec, SecurityContext):
        raise TypeError(f"{type(entity).__name__} has no pysaml2 SecurityContext (expected .sec)")
    current = sec.crypto
    backend = InProcessXmlSecBackend(
        current.xmlsec if isinstance(current, CryptoBackendXmlSec1) else None,
        allow_sha1=allow_sha1,
        delete_tmpfiles=bool(getattr(current, "delete_tmpfiles", True)),
    )
    sec.crypto = backend
    if include_metadata:
        md_sec = getattr(getattr(entity, "metadata", None), "security", None)
        if isinstance(md_sec, SecurityContext):
            md_sec.crypto = backend
    return backend
