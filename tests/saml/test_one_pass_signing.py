"""The broker's SAML Responses signed in one pass (``broker.saml.message_signing``), checked with xmlsec1 and pysaml2.

The Assertion and the Response are signed on one tree, parsed once and serialised once; each signature must verify
on its own with the ``xmlsec1`` program, match byte for byte what pysaml2's stock path signs with ``xmlsec1``, and a
stock pysaml2 SP must accept the Response.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import saml2
from lxml import etree  # type: ignore[import-untyped]
from saml2.saml import NAMEID_FORMAT_TRANSIENT, NameID
from saml2.sigver import SignatureError, pre_signature_part, security_context, signed_instance_factory
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

import broker.saml.xmlsec_backend as backend_module
from broker.core import errors
from broker.downstream.saml_responses import error_response, session_answer
from broker.saml.message_signing import sign_message
from broker.saml.xmlsec_backend import InProcessXmlSecBackend

from .idp_answer_support import (
    ASSERTION_NODE,
    RESPONSE_NODE,
    IdpWorld,
    make_idp_world,
    posted_xml,
    xmlsec1_verifies,
)

NS = {"samlp": "urn:oasis:names:tc:SAML:2.0:protocol", "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
      "ds": "http://www.w3.org/2000/09/xmldsig#"}
UPSTREAM = "https://city.example.org/idp"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, xmlsec1: str) -> IdpWorld:
    return make_idp_world(tmp_path_factory.mktemp("one-pass"))


def _ids(xml: bytes) -> tuple[str, str]:
    root = etree.fromstring(xml)
    return root.get("ID"), root.find("saml:Assertion", NS).get("ID")


def _c14n(document: bytes) -> bytes:
    canonical: bytes = etree.tostring(etree.fromstring(document), method="c14n", exclusive=True)
    return canonical


def _counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    calls: list[int] = []
    original: Callable[..., Any] = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def _stock_arguments(world: IdpWorld) -> dict[str, Any]:
    """What pysaml2's ``Server._authn_response`` needs for a Response to the SP, apart from signing."""
    result = world.login()
    return {"in_response_to": result.request.request_id, "consumer_url": world.sp.acs_url,
            "sp_entity_id": world.sp.entity_id, "identity": {"mail": ["alice@example.org"]},
            "name_id": NameID(format=NAMEID_FORMAT_TRANSIENT, text="_" + "7" * 40),
            "policy": world.servers.server(world.catalog).config.getattr("policy", "idp")}


def _answer(world: IdpWorld) -> tuple[bytes, str]:
    result = world.login()
    form, _ = session_answer(world.servers, world.catalog, result, UPSTREAM, "sid-1")
    return posted_xml(form), str(result.request.request_id)


def test_the_response_is_serialised_once_and_parsed_once(world: IdpWorld, monkeypatch: pytest.MonkeyPatch,
                                                         xmlsec1: str) -> None:
    to_string = _counting(monkeypatch, saml2.SamlBase, "to_string")
    parses = _counting(monkeypatch, backend_module, "parse_hardened")
    serialisations = _counting(monkeypatch, etree, "tostring")
    xml, _ = _answer(world)
    assert (len(to_string), len(parses), len(serialisations)) == (1, 1, 1)
    response_id, assertion_id = _ids(xml)
    assert xmlsec1_verifies(xmlsec1, xml, world.cert_file, ASSERTION_NODE, assertion_id)
    assert xmlsec1_verifies(xmlsec1, xml, world.cert_file, RESPONSE_NODE, response_id)


def test_the_counts_tell_pysaml2s_stock_path_apart(world: IdpWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """The counters see what the one pass saves: pysaml2 parses and serialises once per signature."""
    server = world.servers.server(world.catalog)
    parses = _counting(monkeypatch, backend_module, "parse_hardened")
    serialisations = _counting(monkeypatch, etree, "tostring")
    server._authn_response(**_stock_arguments(world), sign_response=True, sign_assertion=True,
                           sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)
    assert (len(parses), len(serialisations)) == (2, 2)


def test_a_stock_pysaml2_sp_accepts_the_response(world: IdpWorld) -> None:
    result = world.login()
    form, name_id = session_answer(world.servers, world.catalog, result, UPSTREAM, "sid-2")
    parsed = world.sp.parse(dict(form.fields)["SAMLResponse"], str(result.request.request_id))
    assert parsed.name_id.text == name_id.value
    assert parsed.ava["mail"] == ["alice.liddell@example.org"]


def test_the_signatures_are_those_of_pysaml2s_stock_path_with_xmlsec1(world: IdpWorld,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Same templates, same key: RSA PKCS#1 v1.5 is deterministic, so equal bytes were signed (same profile)."""
    server = world.servers.server(world.catalog)
    unsigned: list[tuple[Any, Any]] = []
    one_pass = server.sec.crypto.sign_statements

    def keep(statement: Any, parts: Any, key_file: str) -> str:
        unsigned.append((statement, parts))
        signed: str = one_pass(statement, parts, key_file)
        return signed

    monkeypatch.setattr(server.sec.crypto, "sign_statements", keep)
    xml, _ = _answer(world)
    [(statement, parts)] = unsigned
    assert [name for name, _ in parts] == [ASSERTION_NODE, RESPONSE_NODE]
    stock = signed_instance_factory(statement.decode(), security_context(server.config), parts)  # xmlsec1 --sign
    assert _c14n(xml) == _c14n(stock.encode())


def test_a_tampered_assertion_fails_verification(world: IdpWorld, xmlsec1: str) -> None:
    xml, request_id = _answer(world)
    response_id, assertion_id = _ids(xml)
    tampered = xml.replace(b"alice.liddell@example.org", b"mallory@example.org")
    assert tampered != xml
    assert not xmlsec1_verifies(xmlsec1, tampered, world.cert_file, ASSERTION_NODE, assertion_id)
    assert not xmlsec1_verifies(xmlsec1, tampered, world.cert_file, RESPONSE_NODE, response_id)
    backend = InProcessXmlSecBackend()
    for node, node_id in ((ASSERTION_NODE, assertion_id), (RESPONSE_NODE, response_id)):
        with pytest.raises(SignatureError, match="invalid"):
            backend.validate_signature(tampered, str(world.cert_file), "pem", node, node_id)
    with pytest.raises(SignatureError):
        world.sp.parse(base64.b64encode(tampered).decode(), request_id)


def test_the_signature_profile_is_kept(world: IdpWorld) -> None:
    xml, _ = _answer(world)
    root = etree.fromstring(xml)
    cert = "".join(line for line in world.cert_file.read_text().splitlines() if "CERTIFICATE" not in line)
    for element, signature_id in ((root, "Signature1"), (root.find("saml:Assertion", NS), "Signature2")):
        signature = element[1]  # SAML Core §5.4.1: right after the Issuer
        assert signature.tag == f"{{{NS['ds']}}}Signature" and signature.get("Id") == signature_id
        assert signature.xpath("ds:SignedInfo/ds:Reference/@URI", namespaces=NS) == ["#" + element.get("ID")]
        assert signature.xpath("ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform/@Algorithm", namespaces=NS) \
            == ["http://www.w3.org/2000/09/xmldsig#enveloped-signature", "http://www.w3.org/2001/10/xml-exc-c14n#"]
        assert signature.xpath("ds:SignedInfo/ds:SignatureMethod/@Algorithm", namespaces=NS) == [SIG_RSA_SHA256]
        assert signature.xpath("ds:SignedInfo/ds:Reference/ds:DigestMethod/@Algorithm", namespaces=NS) \
            == [DIGEST_SHA256]
        assert signature.xpath("ds:KeyInfo/ds:X509Data/ds:X509Certificate/text()", namespaces=NS) == [cert]


def test_an_error_response_is_signed_once_and_verifies(world: IdpWorld, xmlsec1: str, tmp_path: Path) -> None:
    result = world.login()
    form = error_response(world.servers, world.catalog, result.request, errors.ConsentDeclined())
    xml = posted_xml(form)
    root = etree.fromstring(xml)
    assert len(root.findall(".//ds:Signature", NS)) == 1 and root.find("saml:Assertion", NS) is None
    assert root.find("samlp:Status/samlp:StatusCode", NS).get("Value") == errors.ConsentDeclined.saml_status
    assert xmlsec1_verifies(xmlsec1, xml, world.cert_file, RESPONSE_NODE, root.get("ID"))
    other = make_idp_world(tmp_path)  # the same check under another IdP's certificate refuses it
    assert not xmlsec1_verifies(xmlsec1, xml, other.cert_file, RESPONSE_NODE, root.get("ID"))


def _unsigned_with_templates(world: IdpWorld) -> tuple[Any, Any]:
    """A Response and its Assertion as pysaml2 builds them, each with pysaml2's signature template."""
    server = world.servers.server(world.catalog)
    response = server._authn_response(**_stock_arguments(world), sign_response=False, sign_assertion=False)
    for element in (response.assertion, response):
        element.signature = pre_signature_part(element.id, server.sec.my_cert, 1, sign_alg=SIG_RSA_SHA256,
                                               digest_alg=DIGEST_SHA256)
    return server, response


@pytest.mark.parametrize("order", ["outer first", "twice"])
def test_an_element_inside_one_already_signed_is_refused(world: IdpWorld, order: str) -> None:
    """The Response's signature covers the Assertion's: signing the Assertion after it would break it."""
    server, response = _unsigned_with_templates(world)
    parts = {"outer first": [(RESPONSE_NODE, response.id), (ASSERTION_NODE, response.assertion.id)],
             "twice": [(ASSERTION_NODE, response.assertion.id), (ASSERTION_NODE, response.assertion.id)]}[order]
    with pytest.raises(SignatureError, match="signed before it"):
        server.sec.crypto.sign_statements(response.to_string(), parts, server.sec.key_file)
    inner_first = [(ASSERTION_NODE, response.assertion.id), (RESPONSE_NODE, response.id)]
    assert server.sec.crypto.sign_statements(response.to_string(), inner_first, server.sec.key_file)


def test_a_message_that_already_carries_a_signature_is_refused(world: IdpWorld) -> None:
    server, response = _unsigned_with_templates(world)
    with pytest.raises(ValueError, match="already carries a signature"):
        sign_message(server, response, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)


def test_issued_assertions_are_not_kept_in_memory(world: IdpWorld) -> None:
    """pysaml2 keeps each Assertion it issues for AssertionIDRequest and AuthnQuery, which the broker does not
    serve (``saml_server._IdpServer``): a process answering logins must not grow with them."""
    server = world.servers.server(world.catalog)
    for _ in range(3):
        _answer(world)
    assert server.session_db.assertion == {}
    assert server.session_db.authn == {}
