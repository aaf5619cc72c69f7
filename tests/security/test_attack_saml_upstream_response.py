"""Attacks on the SAML Responses the broker receives from upstream IdPs (``broker.upstream.saml_response``).

Every forged message starts as a real response that the pysaml2 IdP peer (``tests.peers.saml_idp``, the
``xmlsec1`` program) issued and signed; the test then changes it with lxml, as an attacker holding one valid
response of their own would. Each attack must end in ``ResponseRefused`` (nothing returned), and the controls
show that the unmodified message passes, so a refusal is caused by the forgery and not by the set-up.

The eight XML signature wrapping (XSW) variants follow Somorovsky et al., "On Breaking SAML: Be Whoever You
Want to Be" (USENIX Security 2012), applied to the assertion (or, for XSW 1/2, the Response) signature.
"""

from __future__ import annotations

import base64
import copy
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from lxml import etree  # type: ignore[import-untyped]
from saml2.xmldsig import DIGEST_SHA1, SIG_RSA_SHA1

from broker.upstream.saml_response import ResponseRefused, verify_response
from tests.peers.saml_idp import IdpWorld, TestIdp, make_idp_world
from tests.upstream.saml_response_support import NAME_ID, expectations, issue, now, verify

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
EVIL = "admin@city.example"


def q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


# (named like the OpenID world of tests/upstream/conftest.py, which this module's fixture overrides here)
@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> IdpWorld:
    return make_idp_world(tmp_path_factory.mktemp("upstream-saml-attacks"))


@pytest.fixture
def request_id() -> str:
    return "id-" + secrets.token_hex(16)


def decode(response: str) -> Any:
    return etree.fromstring(base64.b64decode(response))


def encode(root: Any) -> str:
    return base64.b64encode(etree.tostring(root)).decode("ascii")


def assertion_of(root: Any) -> Any:
    return root.find(q(SAML, "Assertion"))


def name_id_of(assertion: Any) -> Any:
    return assertion.find(f"{q(SAML, 'Subject')}/{q(SAML, 'NameID')}")


def evil_copy(signed: Any, *, keep_id: bool = False) -> Any:
    """The attacker's assertion: the signed one with another subject, its signature removed."""
    evil = copy.deepcopy(signed)
    for signature in evil.findall(q(DS, "Signature")):
        evil.remove(signature)
    if not keep_id:
        evil.set("ID", "id-evil-" + secrets.token_hex(8))
    name_id_of(evil).text = EVIL
    return evil


def refused(world: IdpWorld, request_id: str, root: Any, match: str | None = None, **changes: Any) -> None:
    with pytest.raises(ResponseRefused, match=match):
        verify(world, request_id, encode(root), **changes)


# -- controls: the unmodified messages the attacks start from are accepted -----------------------------------------

@pytest.mark.parametrize(("sign_response", "sign_assertion"), [(False, True), (True, False), (True, True)])
def test_control_unmodified_response_passes(world: IdpWorld, request_id: str, sign_response: bool,
                                            sign_assertion: bool) -> None:
    root = decode(issue(world, request_id, sign_response=sign_response, sign_assertion=sign_assertion))
    assert verify(world, request_id, encode(root)).name_id == NAME_ID  # decode + encode keeps the signatures


# -- XML signature wrapping ------------------------------------------------------------------------------------------

def xsw1_signed_response_in_evil_response(root: Any) -> Any:
    """XSW 1: a new (unsigned) Response with an evil assertion; the signed Response is copied into its Signature."""
    evil_root = copy.deepcopy(root)
    evil_root.set("ID", "id-evil-response")
    signature = evil_root.find(q(DS, "Signature"))
    original = copy.deepcopy(root)
    signature.append(original)  # the Reference #<original ID> now points inside the evil Response's Signature
    assertion = assertion_of(evil_root)
    name_id_of(assertion).text = EVIL
    return evil_root


def xsw2_signed_response_detached_before(root: Any) -> Any:
    """XSW 2: as XSW 1, but the signed Response is inserted as a sibling before the evil Response's Signature."""
    evil_root = copy.deepcopy(root)
    evil_root.set("ID", "id-evil-response")
    evil_root.find(q(DS, "Signature")).addprevious(copy.deepcopy(root))
    name_id_of(assertion_of(evil_root)).text = EVIL
    return evil_root


def xsw3_evil_assertion_before_signed(root: Any) -> Any:
    """XSW 3: an evil assertion inserted before the signed one."""
    signed = assertion_of(root)
    signed.addprevious(evil_copy(signed))
    return root


def xsw4_signed_inside_evil(root: Any) -> Any:
    """XSW 4: the evil assertion wraps the signed one (signed assertion as the evil one's child)."""
    signed = assertion_of(root)
    evil = evil_copy(signed)
    signed.addprevious(evil)
    evil.append(signed)
    return root


def xsw5_evil_with_signature_signed_in_object(root: Any) -> Any:
    """XSW 5: the evil assertion carries the original Signature; the signed assertion sits in its ds:Object."""
    signed = assertion_of(root)
    evil = evil_copy(signed)
    signature = copy.deepcopy(signed.find(q(DS, "Signature")))
    evil.find(q(SAML, "Issuer")).addnext(signature)
    obj = etree.SubElement(signature, q(DS, "Object"))
    signed.addprevious(evil)
    obj.append(signed)
    return root


def xsw6_signed_in_evil_signature_object_same_id(root: Any) -> Any:
    """XSW 6: as XSW 5 with the evil assertion holding the signed assertion's ID (the signed one in ds:Object)."""
    signed = assertion_of(root)
    evil = evil_copy(signed, keep_id=True)
    signature = copy.deepcopy(signed.find(q(DS, "Signature")))
    evil.find(q(SAML, "Issuer")).addnext(signature)
    signed.addprevious(evil)
    etree.SubElement(signature, q(DS, "Object")).append(signed)
    return root


def xsw7_signed_in_extensions(root: Any) -> Any:
    """XSW 7: the signed assertion moved into samlp:Extensions, an evil assertion at the top level."""
    signed = assertion_of(root)
    extensions = etree.Element(q(SAMLP, "Extensions"))
    root.find(q(SAMLP, "Status")).addprevious(extensions)
    signed.addprevious(evil_copy(signed))
    extensions.append(signed)
    return root


def xsw8_signed_in_evil_advice(root: Any) -> Any:
    """XSW 8: the signed assertion as a child of the evil assertion's Advice (the 'Subject/Advice' variant)."""
    signed = assertion_of(root)
    evil = evil_copy(signed)
    advice = etree.Element(q(SAML, "Advice"))
    evil.find(q(SAML, "Conditions")).addnext(advice)
    signed.addprevious(evil)
    advice.append(signed)
    return root


def duplicate_id_evil_copy_after(root: Any) -> Any:
    """An evil copy with the same ID as the signed assertion, after it (ID lookups would find the first)."""
    signed = assertion_of(root)
    signed.addnext(evil_copy(signed, keep_id=True))
    return root


def evil_assertion_after_signed(root: Any) -> Any:
    """An evil assertion inserted after the signed one."""
    signed = assertion_of(root)
    signed.addnext(evil_copy(signed))
    return root


def evil_in_signed_assertion_signature_object(root: Any) -> Any:
    """An evil assertion hidden inside the signed assertion's own Signature/Object."""
    signed = assertion_of(root)
    etree.SubElement(signed.find(q(DS, "Signature")), q(DS, "Object")).append(evil_copy(signed))
    return root


Wrap = Callable[[Any], Any]
WRAPPINGS = [
    pytest.param(xsw1_signed_response_in_evil_response, True, id="xsw1-signed-response-in-evil-response-signature"),
    pytest.param(xsw2_signed_response_detached_before, True, id="xsw2-signed-response-wrapped-by-evil-response"),
    pytest.param(xsw3_evil_assertion_before_signed, False, id="xsw3-evil-assertion-before-signed"),
    pytest.param(evil_assertion_after_signed, False, id="xsw-evil-assertion-after-signed"),
    pytest.param(xsw4_signed_inside_evil, False, id="xsw4-evil-assertion-wraps-signed"),
    pytest.param(xsw5_evil_with_signature_signed_in_object, False, id="xsw5-signed-in-evil-signature-object"),
    pytest.param(xsw6_signed_in_evil_signature_object_same_id, False, id="xsw6-same-id-signed-in-object"),
    pytest.param(xsw7_signed_in_extensions, False, id="xsw7-signed-in-extensions-evil-on-top"),
    pytest.param(xsw8_signed_in_evil_advice, False, id="xsw8-signed-in-evil-subject-advice"),
    pytest.param(duplicate_id_evil_copy_after, False, id="duplicate-id-evil-copy"),
    pytest.param(evil_in_signed_assertion_signature_object, False, id="evil-in-signed-assertion-signature-object"),
]


@pytest.mark.parametrize("validate_schema", [True, False], ids=["schema", "no-schema"])
@pytest.mark.parametrize(("wrap", "response_signed"), WRAPPINGS)
def test_signature_wrapping_is_refused(world: IdpWorld, request_id: str, wrap: Wrap, response_signed: bool,
                                       validate_schema: bool) -> None:
    """Without the schema too: the structural checks and "see what is signed" hold on their own."""
    response = issue(world, request_id, sign_response=response_signed, sign_assertion=not response_signed)
    assert verify(world, request_id, response).name_id == NAME_ID  # control
    forged = wrap(decode(response))
    assert EVIL.encode() in etree.tostring(forged)
    refused(world, request_id, forged, validate_schema=validate_schema)


# -- signatures ------------------------------------------------------------------------------------------------------

# "See what is signed", on its own: forgeries that keep one assertion and signatures only where SAML puts them, so
# that the structural checks pass and the signature profile (SAML core §5.4) is what refuses them.

def assertion_signature_moved_to_response(root: Any) -> Any:
    """The Response's signature replaced by the assertion's (valid, but over the assertion, not the Response)."""
    root.remove(root.find(q(DS, "Signature")))
    root.find(q(SAML, "Issuer")).addnext(copy.deepcopy(assertion_of(root).find(q(DS, "Signature"))))
    assertion = assertion_of(root)
    assertion.remove(assertion.find(q(DS, "Signature")))
    return root


def response_id_changed(root: Any) -> Any:
    root.set("ID", "id-renamed-response")
    return root


def assertion_id_changed(root: Any) -> Any:
    """(The Response signature would break too: it is removed, leaving the assertion's to check.)"""
    root.remove(root.find(q(DS, "Signature")))
    assertion_of(root).set("ID", "id-renamed-assertion")
    return root


def second_reference(root: Any) -> Any:
    reference = root.find(f"{q(DS, 'Signature')}/{q(DS, 'SignedInfo')}/{q(DS, 'Reference')}")
    reference.addnext(copy.deepcopy(reference))
    return root


def xpath_transform(root: Any) -> Any:
    transforms = root.find(f"{q(DS, 'Signature')}/{q(DS, 'SignedInfo')}/{q(DS, 'Reference')}/{q(DS, 'Transforms')}")
    transform = etree.SubElement(transforms, q(DS, "Transform"), Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116")
    etree.SubElement(transform, q(DS, "XPath")).text = "not(ancestor-or-self::*)"
    return root


def object_in_signature(root: Any) -> Any:
    etree.SubElement(root.find(q(DS, "Signature")), q(DS, "Object")).text = "anything"
    return root


@pytest.mark.parametrize(("forge", "match"), [
    pytest.param(assertion_signature_moved_to_response, "does not point", id="signature-of-another-element"),
    pytest.param(response_id_changed, "does not point", id="signed-response-id-renamed"),
    pytest.param(assertion_id_changed, "does not point", id="signed-assertion-id-renamed"),
    pytest.param(second_reference, "exactly one ds:Reference", id="two-references"),
    pytest.param(xpath_transform, "transforms", id="xpath-transform"),
    pytest.param(object_in_signature, "ds:Object", id="object-in-signature"),
])
def test_signature_profile_violations_are_refused(world: IdpWorld, request_id: str, forge: Wrap, match: str) -> None:
    response = issue(world, request_id, sign_response=True, sign_assertion=True)
    assert verify(world, request_id, response).name_id == NAME_ID  # control
    refused(world, request_id, forge(decode(response)), match, validate_schema=False)


def test_unsigned_response_is_refused(world: IdpWorld, request_id: str) -> None:
    response = issue(world, request_id, sign_response=False, sign_assertion=False)
    refused(world, request_id, decode(response), "neither the Response nor the assertion is signed")


@pytest.mark.parametrize(("sign_response", "sign_assertion"), [(True, True), (False, True), (True, False)])
def test_signature_by_key_not_in_metadata_is_refused(world: IdpWorld, request_id: str, sign_response: bool,
                                                     sign_assertion: bool) -> None:
    """The impostor uses the IdP's entity ID and puts its own certificate in KeyInfo: KeyInfo is ignored."""
    response = issue(world, request_id, idp=world.impostor, sign_response=sign_response,
                     sign_assertion=sign_assertion)
    refused(world, request_id, decode(response), "does not verify")
    # control: with the impostor's certificate as the metadata one, the same message would verify
    assert verify(world, request_id, response, signing_certs=(world.cert_b64(world.impostor),)).name_id == NAME_ID


@pytest.mark.parametrize(("sign_response", "sign_assertion"), [(True, False), (False, True)])
def test_tampered_signed_value_is_refused(world: IdpWorld, request_id: str, sign_response: bool,
                                          sign_assertion: bool) -> None:
    root = decode(issue(world, request_id, sign_response=sign_response, sign_assertion=sign_assertion))
    name_id_of(assertion_of(root)).text = EVIL
    refused(world, request_id, root, "does not verify")


def test_sha1_signature_is_refused(world: IdpWorld, request_id: str) -> None:
    sha1_idp = TestIdp(world.idp.entity_id, world.idp.key_file, world.idp.cert_file, sp_metadata=world.sp_metadata,
                       sign_alg=SIG_RSA_SHA1, digest_alg=DIGEST_SHA1)
    response = issue(world, request_id, idp=sha1_idp)
    assert b"rsa-sha1" in base64.b64decode(response)
    refused(world, request_id, decode(response), "sha1")


def test_unsigned_success_with_assertion_of_another_idp_is_refused(world: IdpWorld, request_id: str) -> None:
    """The other IdP genuinely signed the assertion; the unsigned Response claims to come from our IdP."""
    response = issue(world, request_id, idp=world.other_idp, sign_response=False, sign_assertion=True)
    root = decode(response)
    root.find(q(SAML, "Issuer")).text = world.idp.entity_id
    refused(world, request_id, root, "does not verify")
    # even if the other IdP's certificate were trusted as well, its assertion's Issuer is not our IdP
    both = (world.cert_b64(), world.cert_b64(world.other_idp))
    refused(world, request_id, root, "Issuer", signing_certs=both)
    # and with the assertion's Issuer rewritten too, its signature no longer holds
    assertion_of(root).find(q(SAML, "Issuer")).text = world.idp.entity_id
    refused(world, request_id, root, "does not verify", signing_certs=both)


# -- comment and markup injection -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("sign_response", "sign_assertion"), [(True, False), (False, True)])
def test_comment_in_name_id_is_refused_not_truncated(world: IdpWorld, request_id: str, sign_response: bool,
                                                     sign_assertion: bool) -> None:
    """The IdP signed ``user@evil.org.example.org``; a comment after ``user@evil.org`` keeps the digest (exclusive
    c14n drops comments), so a reader of the first text node would see ``user@evil.org``."""
    registered = "user@evil.org.example.org"
    response = issue(world, request_id, name_id=registered, sign_response=sign_response,
                     sign_assertion=sign_assertion)
    assert verify(world, request_id, response).name_id == registered  # control
    root = decode(response)
    name_id = name_id_of(assertion_of(root))
    name_id.text = "user@evil.org"
    comment = etree.Comment("")
    comment.tail = ".example.org"
    name_id.append(comment)
    # the signature still verifies, so the refusal comes from the NameID rule itself
    refused(world, request_id, root, "NameID contains markup")


def test_comment_in_attribute_value_is_refused(world: IdpWorld, request_id: str) -> None:
    root = decode(issue(world, request_id, sign_response=True, sign_assertion=False,
                        attributes={"mail": ["anna@example.org.evil.example"]}))
    value = root.find(f".//{q(SAML, 'AttributeValue')}")
    value.text = "anna@example.org"
    comment = etree.Comment("x")
    comment.tail = ".evil.example"
    value.append(comment)
    refused(world, request_id, root, "contains markup")


# -- the Web SSO profile's conditions --------------------------------------------------------------------------------

def test_expired_response_is_refused(world: IdpWorld, request_id: str) -> None:
    response = issue(world, request_id)
    with pytest.raises(ResponseRefused):
        verify_response(response, expectations(world, request_id), now() + timedelta(minutes=8))
    # control: within the 5 minute lifetime plus skew it is still good
    assert verify_response(response, expectations(world, request_id), now() + timedelta(minutes=6)).name_id


@pytest.mark.parametrize("minutes", [30, 60 * 24])
def test_expired_long_ago_is_refused(world: IdpWorld, request_id: str, minutes: int) -> None:
    with pytest.raises(ResponseRefused, match="IssueInstant"):
        verify_response(issue(world, request_id), expectations(world, request_id),
                        now() + timedelta(minutes=minutes))


def test_not_yet_valid_is_refused(world: IdpWorld, request_id: str) -> None:
    with pytest.raises(ResponseRefused, match="IssueInstant"):
        verify_response(issue(world, request_id), expectations(world, request_id), now() - timedelta(minutes=5))


def test_clock_behind_by_more_than_the_skew_is_refused(world: IdpWorld, request_id: str) -> None:
    response = issue(world, request_id)
    with pytest.raises(ResponseRefused, match=r"IssueInstant|not valid before"):
        verify_response(response, expectations(world, request_id, max_age=timedelta(days=1)),
                        now() - timedelta(minutes=3))


def test_wrong_audience_is_refused(world: IdpWorld, request_id: str) -> None:
    response = issue(world, request_id)
    with pytest.raises(ResponseRefused, match="audience"):
        verify(world, request_id, response, sp_entity_id="https://another-sp.example/metadata")


def test_wrong_destination_is_refused(world: IdpWorld, request_id: str) -> None:
    root = decode(issue(world, request_id, sign_response=False, sign_assertion=True))
    root.set("Destination", "https://attacker.example/acs")
    refused(world, request_id, root, "Destination")


def test_signed_response_without_destination_is_refused(world: IdpWorld, request_id: str) -> None:
    root = decode(issue(world, request_id, sign_response=True, sign_assertion=True))
    del root.attrib["Destination"]
    refused(world, request_id, root, "no Destination")


def test_wrong_recipient_is_refused(world: IdpWorld, request_id: str) -> None:
    """The assertion was issued for another SP's ACS; the unsigned Response's Destination is rewritten to ours."""
    response = world.idp.respond(destination="https://other-sp.example/acs", in_response_to=request_id,
                                 sp_entity_id=world.sp_entity_id, name_id=NAME_ID, sign_response=False)
    root = decode(response)
    root.set("Destination", world.acs_url)
    refused(world, request_id, root, "Recipient")


@pytest.mark.parametrize("expected_id", ["id-unknown-request", None], ids=["mismatched", "expected-unsolicited"])
def test_in_response_to_mismatch_is_refused(world: IdpWorld, request_id: str, expected_id: str | None) -> None:
    response = issue(world, request_id)
    with pytest.raises(ResponseRefused, match="InResponseTo"):
        verify(world, expected_id, response, allow_unsolicited=True)


def test_in_response_to_swapped_on_unsigned_response_is_refused(world: IdpWorld, request_id: str) -> None:
    """The Response (unsigned) is rewritten to our request; the signed SubjectConfirmationData still names theirs."""
    root = decode(issue(world, "id-victim-request", sign_response=False, sign_assertion=True))
    root.set("InResponseTo", request_id)
    refused(world, request_id, root, "SubjectConfirmationData InResponseTo")


def test_unsolicited_response_refused_when_not_allowed(world: IdpWorld) -> None:
    with pytest.raises(ResponseRefused, match="unsolicited"):
        verify(world, None, issue(world, None))


def test_multiple_assertions_are_refused(world: IdpWorld, request_id: str) -> None:
    """Two genuinely signed assertions (from two real responses) in one Response."""
    root = decode(issue(world, request_id, sign_response=False, sign_assertion=True))
    second = assertion_of(decode(issue(world, request_id, sign_response=False, sign_assertion=True,
                                       name_id="someone-else")))
    assertion_of(root).addnext(second)
    refused(world, request_id, root, "exactly one assertion", validate_schema=False)
    refused(world, request_id, root)  # with the schema: the two ds:Signature Id="Signature2" collide first


def test_wrong_root_element_is_refused(world: IdpWorld, request_id: str) -> None:
    assertion = assertion_of(decode(issue(world, request_id, sign_response=False, sign_assertion=True)))
    refused(world, request_id, assertion, "not samlp:Response")


# -- parsing: DOCTYPE, entities, size --------------------------------------------------------------------------------

XXE = b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
LAUGHS = (b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
          + b"".join(b'<!ENTITY %c "&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;">' % ((ord("a") + i + 1,) + (ord("a") + i,)
                                                                               * 10) for i in range(9))
          + b"]>\n")
EXTERNAL_DTD = b'<?xml version="1.0"?>\n<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd">\n'


@pytest.mark.parametrize(("prolog", "entity"), [
    pytest.param(XXE, b"&x;", id="xxe-file"),
    pytest.param(LAUGHS, b"&j;", id="billion-laughs"),
    pytest.param(EXTERNAL_DTD, b"", id="external-dtd"),
    pytest.param(b'<?xml version="1.0"?>\n<!DOCTYPE r>\n', b"", id="bare-doctype"),
])
def test_doctype_and_entities_are_refused(world: IdpWorld, request_id: str, prolog: bytes, entity: bytes) -> None:
    xml = etree.tostring(decode(issue(world, request_id)))
    if entity:
        xml = xml.replace(NAME_ID.encode(), entity)
    with pytest.raises(ResponseRefused, match=r"DOCTYPE|not well-formed|external"):
        verify(world, request_id, base64.b64encode(prolog + xml).decode())


def test_oversized_message_is_refused_before_parsing(world: IdpWorld, request_id: str) -> None:
    response = issue(world, request_id)
    assert verify(world, request_id, response).name_id == NAME_ID
    size = len(base64.b64decode(response))
    with pytest.raises(ResponseRefused, match="larger than"):
        verify(world, request_id, response, max_size=size - 1)
    huge = base64.b64encode(b"<" * (300 * 1024)).decode()
    with pytest.raises(ResponseRefused, match="larger than"):
        verify(world, request_id, huge)


@pytest.mark.parametrize("garbage", ["@@@@", "PHNhbWw+" + "=" * 3, "PD94bWwg\x00"])
def test_non_base64_is_refused(world: IdpWorld, request_id: str, garbage: str) -> None:
    with pytest.raises(ResponseRefused, match="base64"):
        verify(world, request_id, garbage)
