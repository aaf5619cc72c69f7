"""Signed SAML messages in one pass: pysaml2 builds the message unsigned, this module signs every part on one tree.

pysaml2's own path (``Entity.sign`` -> ``saml2.sigver.signed_instance_factory``) serialises the message and then,
for each signature, parses the whole document, signs one element and serialises it again. Here the message is
serialised once, parsed once with the hardened parser, its signatures made inner first (the Assertion, then the
Response that covers it) and the result serialised once (``InProcessXmlSecBackend.sign_statements``).

The signature profile is pysaml2's, unchanged: its own templates (``saml2.sigver.pre_signature_part``) with the
enveloped-signature and exclusive c14n transforms, one Reference ``#<ID>`` to the signed element, the signing
certificate in ``ds:KeyInfo``, and the ``ds:Signature`` placed after the Issuer by pysaml2's element order
(SAML Core §5.4.1-§5.4.4). The key is the entity's own (``key_file`` of its security context).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from saml2 import SamlBase, class_name
from saml2.sigver import pre_signature_part

from broker.saml.xmlsec_backend import InProcessXmlSecBackend

#: the ``Id`` suffixes pysaml2 gives the templates (``Signature1`` on the message, ``Signature2`` on an Assertion)
_MESSAGE_SIGNATURE, _INNER_SIGNATURE = 1, 2


def sign_message(entity: Any, message: SamlBase, inner: Sequence[SamlBase] = (), *, sign_alg: str,
                 digest_alg: str) -> str:
    """``message`` with each of ``inner`` (elements inside it, e.g. its Assertion) and then itself signed, as XML.

    ``entity`` is a pysaml2 entity (``Server``) whose backend is the in-process one (``install_in_process_backend``);
    the algorithms are checked against the backend's allow-lists when signing. The elements must be unsigned.
    """
    backend = entity.sec.crypto
    if not isinstance(backend, InProcessXmlSecBackend):
        raise TypeError("the entity signs with pysaml2's stock backend; install_in_process_backend() first")
    parts = add_templates(entity, message, inner, sign_alg=sign_alg, digest_alg=digest_alg)
    return backend.sign_statements(message.to_string(), parts, entity.sec.key_file)


def add_templates(entity: Any, message: SamlBase, inner: Sequence[SamlBase] = (), *, sign_alg: str,
                  digest_alg: str) -> list[tuple[str, str | None]]:
    """Give ``inner`` and then ``message`` pysaml2's signature template, with ``entity``'s certificate in KeyInfo;
    the (node name, ID) pairs to sign, in signing order."""
    parts: list[tuple[str, str | None]] = []
    for element, identifier in (*((e, _INNER_SIGNATURE) for e in inner), (message, _MESSAGE_SIGNATURE)):
        if element.signature is not None:
            raise ValueError(f"{class_name(element)} {element.id!r} already carries a signature")
        if not element.id:
            raise ValueError(f"{class_name(element)} has no ID to refer to")
        element.signature = pre_signature_part(element.id, entity.sec.my_cert, identifier, sign_alg=sign_alg,
                                               digest_alg=digest_alg)
        parts.append((class_name(element), element.id))
    return parts
