"""Constants and helpers shared by the XML-signature tests (the fixtures live in conftest.py)."""

from __future__ import annotations

import base64
import datetime
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree  # type: ignore[import-untyped]
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.saml import AUTHN_PASSWORD_PROTECTED, NAME_FORMAT_URI, NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server
from saml2.sigver import SignatureError
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from broker.keys.keyring import self_signed, write_private

IDP_ENTITY_ID = "https://idp.example.org/saml/metadata"
SP_ENTITY_ID = "https://sp.example.org/saml/metadata"
ACS_URL = "https://sp.example.org/saml/acs"
SSO_URL = "https://idp.example.org/saml/sso"
REQUEST_ID = "id-authn-request-1"
IDENTITY = {"mail": ["alice@example.org"], "givenName": ["Alice"], "sn": ["Liddell"]}
NAME_ID_VALUE = "alice-7f3a9c"
MakeIdp = Callable[..., Server]
MakeSp = Callable[..., Saml2Client]

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}
RESPONSE_NODE = f"{NS['samlp']}:Response"
ASSERTION_NODE = f"{NS['saml']}:Assertion"


@dataclass(frozen=True)
class KeyPair:
    key_file: str
    cert_file: str
    cert_b64: str  # base64 DER, as it appears in ds:X509Certificate


def make_keypair(directory: Path, name: str, *, elliptic: bool = False) -> KeyPair:
    """RSA 2048 (or EC P-256) key, file mode 0600, and a self-signed certificate for it."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    key = ec.generate_private_key(ec.SECP256R1()) if elliptic else rsa.generate_private_key(65537, 2048)
    cert = self_signed(key, name, datetime.timedelta(days=30))
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.crt"
    write_private(key_path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    der = cert.public_bytes(serialization.Encoding.DER)
    return KeyPair(str(key_path), str(cert_path), base64.b64encode(der).decode("ascii"))


def idp_config(
    keys: KeyPair,
    xmlsec_binary: str,
    sp_metadata: str | None = None,
    sign_alg: str = SIG_RSA_SHA256,
    digest_alg: str = DIGEST_SHA256,
) -> dict[str, Any]:
    # signing_algorithm/digest_algorithm must sit in the service section: pysaml2 entities read
    # config.getattr(..., "idp"), which does not see the top-level keys (they would silently mean rsa-sha1).
    conf: dict[str, Any] = {
        "entityid": IDP_ENTITY_ID,
        "key_file": keys.key_file,
        "cert_file": keys.cert_file,
        "xmlsec_binary": xmlsec_binary,
        "service": {
            "idp": {
                "endpoints": {"single_sign_on_service": [(SSO_URL, BINDING_HTTP_REDIRECT)]},
                "policy": {"default": {"lifetime": {"minutes": 15}, "name_form": NAME_FORMAT_URI}},
                "signing_algorithm": sign_alg,
                "digest_algorithm": digest_alg,
            }
        },
    }
    if sp_metadata is not None:
        conf["metadata"] = {"inline": [sp_metadata]}
    return conf


def sp_config(keys: KeyPair, xmlsec_binary: str, idp_metadata: str | None = None) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "entityid": SP_ENTITY_ID,
        "key_file": keys.key_file,
        "cert_file": keys.cert_file,
        "xmlsec_binary": xmlsec_binary,
        "service": {
            "sp": {
                "endpoints": {"assertion_consumer_service": [(ACS_URL, BINDING_HTTP_POST)]},
                "want_response_signed": True,
                "want_assertions_signed": True,
                "allow_unsolicited": False,
                "signing_algorithm": SIG_RSA_SHA256,
                "digest_algorithm": DIGEST_SHA256,
            }
        },
    }
    if idp_metadata is not None:
        conf["metadata"] = {"inline": [idp_metadata]}
    return conf


def issue_response(idp: Server, *, sign_response: bool = True, sign_assertion: bool = True) -> str:
    """A real AuthnResponse from pysaml2, as the XML string the IdP would POST."""
    xml = idp.create_authn_response(
        IDENTITY,
        in_response_to=REQUEST_ID,
        destination=ACS_URL,
        sp_entity_id=SP_ENTITY_ID,
        name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=NAME_ID_VALUE),
        authn={"class_ref": AUTHN_PASSWORD_PROTECTED},
        sign_response=sign_response,
        sign_assertion=sign_assertion,
    )
    assert isinstance(xml, str)
    return xml


def sp_parse(sp: Saml2Client, xml: str | bytes) -> Any:
    """Full SP-side processing of a POSTed response (signatures, schema, conditions, audience)."""
    raw = xml.encode("utf-8") if isinstance(xml, str) else xml
    return sp.parse_authn_request_response(
        base64.b64encode(raw).decode("ascii"), BINDING_HTTP_POST, outstanding={REQUEST_ID: "/"}
    )


def parse_xml(xml: str | bytes) -> Any:
    return etree.fromstring(xml.encode("utf-8") if isinstance(xml, str) else xml)


def to_xml(root: Any) -> bytes:
    data: bytes = etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")
    return data


def ids_of(xml: str | bytes) -> tuple[str, str]:
    """(Response ID, Assertion ID) of a response document."""
    root = parse_xml(xml)
    return root.get("ID"), root.find("saml:Assertion", NS).get("ID")


def verify_both(crypto: Any, xml: str | bytes, cert_file: str) -> None:
    """Both signatures of a signed Response (Response and Assertion) verify with ``crypto``."""
    response_id, assertion_id = ids_of(xml)
    assert crypto.validate_signature(xml, cert_file, "pem", RESPONSE_NODE, response_id) is True
    assert crypto.validate_signature(xml, cert_file, "pem", ASSERTION_NODE, assertion_id) is True


def refuse_both(crypto: Any, xml: str | bytes, cert_file: str, match: str | None = None) -> None:
    """Both signatures of a Response are refused by ``crypto`` (with ``match`` in the error, if given)."""
    response_id, assertion_id = ids_of(xml)
    for node_name, node_id in ((RESPONSE_NODE, response_id), (ASSERTION_NODE, assertion_id)):
        with pytest.raises(SignatureError, match=match):
            crypto.validate_signature(xml, cert_file, "pem", node_name, node_id)
