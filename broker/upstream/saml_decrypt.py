"""Decryption of a ``saml:EncryptedAssertion`` (SAML core §2.3.4, §6.1) with python-xmlsec.

Trusted: the broker's own private keys (current and next, for rollover). Untrusted: the ciphertext and its
algorithms. Algorithms come from an allow-list: the data key is wrapped with RSA-OAEP (RSA PKCS#1 v1.5 is
refused: Bleichenbacher-style oracles), the data is AES-CBC or AES-GCM (3DES and anything else refused). The
``xenc:EncryptedKey`` must sit in the ``ds:KeyInfo`` of the ``xenc:EncryptedData`` (the layout of pysaml2,
Shibboleth and ADFS); key retrieval by reference is not supported. The decrypted content replaces the
EncryptedData and must be exactly one ``saml:Assertion``.
"""

from __future__ import annotations

import threading
from typing import Any, Final

import xmlsec

from broker.saml.xmlsec_backend import DS_NS
from broker.upstream.saml_structure import ASSERTION, StructureError

XENC_NS: Final = "http://www.w3.org/2001/04/xmlenc#"
_XENC11: Final = "http://www.w3.org/2009/xmlenc11#"
DATA_ALGORITHMS: Final = frozenset({
    f"{XENC_NS}aes128-cbc", f"{XENC_NS}aes192-cbc", f"{XENC_NS}aes256-cbc",
    f"{_XENC11}aes128-gcm", f"{_XENC11}aes192-gcm", f"{_XENC11}aes256-gcm",
})
KEY_TRANSPORT_ALGORITHMS: Final = frozenset({f"{XENC_NS}rsa-oaep-mgf1p", f"{_XENC11}rsa-oaep"})

_local = threading.local()


def _manager(pem: bytes) -> xmlsec.KeysManager:
    """A keys manager holding one private key, cached per thread (creating one costs ~14 ms: it sets up an
    X.509 store); at most 16 per thread, so rotated keys do not accumulate."""
    managers: dict[bytes, xmlsec.KeysManager] | None = getattr(_local, "managers", None)
    if managers is None:
        managers = _local.managers = {}
    manager = managers.get(pem)
    if manager is None:
        try:
            key = xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatPem)
        except xmlsec.Error as exc:
            raise StructureError(f"a decryption key is unusable: {exc}") from exc
        manager = xmlsec.KeysManager()
        manager.add_key(key)
        if len(managers) >= 16:
            managers.clear()
        managers[pem] = manager
    return manager


def _algorithm(parent: Any, local_ns: str = XENC_NS) -> str | None:
    method = parent.find(f"{{{local_ns}}}EncryptionMethod")
    return None if method is None else method.get("Algorithm")


def decrypt_assertion(encrypted: Any, keys: tuple[bytes, ...]) -> Any:
    """Replace ``encrypted``'s content by its decrypted ``saml:Assertion`` and return that element.

    SAML core §2.3.4: EncryptedAssertion holds one ``xenc:EncryptedData`` (Type Element) and optional
    ``xenc:EncryptedKey`` elements; here the key must be inside the EncryptedData's KeyInfo.
    """
    if not keys:
        raise StructureError("the assertion is encrypted but no decryption key is configured")
    children = list(encrypted)
    data = [c for c in children if c.tag == f"{{{XENC_NS}}}EncryptedData"]
    if len(data) != 1 or len(children) != 1:
        raise StructureError("EncryptedAssertion must hold exactly one xenc:EncryptedData and nothing else")
    encrypted_data = data[0]
    if (alg := _algorithm(encrypted_data)) not in DATA_ALGORITHMS:
        raise StructureError(f"data encryption algorithm {alg!r} is not allowed")
    key_info = encrypted_data.find(f"{{{DS_NS}}}KeyInfo")
    wrapped = [] if key_info is None else key_info.findall(f"{{{XENC_NS}}}EncryptedKey")
    if len(wrapped) != 1 or len(key_info) != 1:
        raise StructureError("expected the KeyInfo of EncryptedData to hold exactly one xenc:EncryptedKey")
    if (alg := _algorithm(wrapped[0])) not in KEY_TRANSPORT_ALGORITHMS:
        raise StructureError(f"key transport algorithm {alg!r} is not allowed")
    failures = []
    for pem in keys:
        ctx = xmlsec.EncryptionContext(_manager(pem))
        try:
            # decrypt() changes the tree only on success
            ctx.decrypt(encrypted_data)
        except xmlsec.Error as exc:
            failures.append(str(exc))
            continue
        break
    else:
        raise StructureError(f"the assertion could not be decrypted with any configured key ({'; '.join(failures)})")
    result = list(encrypted)
    if len(result) != 1 or result[0].tag != ASSERTION or (encrypted.text or "").strip() or (
            result[0].tail or "").strip():
        raise StructureError("the decrypted content is not exactly one saml:Assertion")
    return result[0]
