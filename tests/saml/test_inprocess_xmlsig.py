"""The in-process XML-signature backend: interoperability with xmlsec1/pysaml2 and refusal of forgeries."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
import saml2.sigver
from saml2 import saml
from saml2.metadata import entity_descriptor, sign_entity_descriptor
from saml2.sigver import CryptoBackendXmlSec1, SignatureError, pre_signature_part
from saml2.time_util import instant
from saml2.xmldsig import (
    DIGEST_SHA1,
    DIGEST_SHA256,
    DIGEST_SHA512,
    SIG_ECDSA_SHA256,
    SIG_RSA_SHA1,
    SIG_RSA_SHA256,
    SIG_RSA_SHA512,
)

from broker.saml.xmlsec_backend import InProcessXmlSecBackend, install_in_process_backend

from .samlsig_support import (
    ASSERTION_NODE,
    NAME_ID_VALUE,
    NS,
    RESPONSE_NODE,
    KeyPair,
    MakeIdp,
    MakeSp,
    ids_of,
    issue_response,
    make_keypair,
    parse_xml,
    refuse_both,
    sp_parse,
    verify_both,
)

ENTITY_DESCRIPTOR_NODE = "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor"


@pytest.fixture
def backend() -> InProcessXmlSecBackend:
    return InProcessXmlSecBackend()


@pytest.fixture
def binary_backend(xmlsec1: str) -> CryptoBackendXmlSec1:
    return CryptoBackendXmlSec1(xmlsec1)




# -- interoperability -------------------------------------------------------------------------------------------


def test_in_process_signatures_verify_with_the_xmlsec1_binary(
    make_idp: MakeIdp, binary_backend: CryptoBackendXmlSec1, idp_keys: KeyPair, attacker_keys: KeyPair
) -> None:
    xml = issue_response(make_idp())
    verify_both(binary_backend, xml, idp_keys.cert_file)
    # the cross-check is not vacuous: the binary refuses the same document under another certificate
    refuse_both(binary_backend, xml, attacker_keys.cert_file)


def test_binary_signatures_verify_in_process(
    make_idp: MakeIdp, make_sp: MakeSp, backend: InProcessXmlSecBackend, idp_keys: KeyPair
) -> None:
    xml = issue_response(make_idp(in_process=False))
    verify_both(backend, xml, idp_keys.cert_file)
    assert sp_parse(make_sp(in_process=True), xml).name_id.text == NAME_ID_VALUE


def test_stock_pysaml2_sp_accepts_a_response_from_an_in_process_idp(make_idp: MakeIdp, make_sp: MakeSp) -> None:
    sp = make_sp()
    assert not isinstance(sp.sec.crypto, InProcessXmlSecBackend)
    result = sp_parse(sp, issue_response(make_idp()))
    assert result.name_id.text == NAME_ID_VALUE
    assert result.ava["mail"] == ["alice@example.org"]
    assert result.response.signature is not None
    assert result.assertion.signature is not None


def test_signed_metadata_without_node_id(
    make_idp: MakeIdp, binary_backend: CryptoBackendXmlSec1, backend: InProcessXmlSecBackend, idp_keys: KeyPair
) -> None:
    idp = make_idp()
    _, xml = sign_entity_descriptor(entity_descriptor(idp.config), None, idp.sec, SIG_RSA_SHA512, DIGEST_SHA512)
    for crypto in (binary_backend, backend):
        assert crypto.validate_signature(xml, idp_keys.cert_file, "pem", ENTITY_DESCRIPTOR_NODE, None) is True


def test_ecdsa_signed_assertion_interoperates(
    keys_dir: Path, backend: InProcessXmlSecBackend, binary_backend: CryptoBackendXmlSec1
) -> None:
    keys = make_keypair(keys_dir, "idp-ec", elliptic=True)
    assertion = saml.Assertion(
        id="_ec-assertion-1",
        version="2.0",
        issue_instant=instant(),
        issuer=saml.Issuer(text="https://idp.example.org/saml/metadata"),
        subject=saml.Subject(name_id=saml.NameID(text=NAME_ID_VALUE)),
    )
    assertion.signature = pre_signature_part(
        assertion.id, keys.cert_b64, 1, sign_alg=SIG_ECDSA_SHA256, digest_alg=DIGEST_SHA256
    )
    signed = backend.sign_statement(assertion, ASSERTION_NODE, keys.key_file, assertion.id)
    for crypto in (binary_backend, backend):
        assert crypto.validate_signature(signed, keys.cert_file, "pem", ASSERTION_NODE, assertion.id) is True
    tampered = signed.replace(NAME_ID_VALUE, "admin")
    with pytest.raises(SignatureError, match="invalid"):
        backend.validate_signature(tampered, keys.cert_file, "pem", ASSERTION_NODE, assertion.id)


# -- the backend is really used once installed --------------------------------------------------------------------


def _forbid_subprocesses(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_xmlsec1(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"xmlsec1 was spawned: {args}")

    monkeypatch.setattr(saml2.sigver, "Popen", no_xmlsec1)


def test_installed_idp_signs_in_process(make_idp: MakeIdp, xmlsec1: str, monkeypatch: pytest.MonkeyPatch) -> None:
    idp = make_idp()
    crypto = idp.sec.crypto
    assert isinstance(crypto, InProcessXmlSecBackend)
    assert crypto.xmlsec == xmlsec1  # kept for encryption
    calls: list[str] = []
    original = InProcessXmlSecBackend.sign_statement

    def counting(self: InProcessXmlSecBackend, statement: Any, node_name: str, key_file: str, node_id: Any) -> str:
        calls.append(node_name)
        return original(self, statement, node_name, key_file, node_id)

    monkeypatch.setattr(InProcessXmlSecBackend, "sign_statement", counting)
    crypto.xmlsec = "/nonexistent/xmlsec1"
    _forbid_subprocesses(monkeypatch)
    xml = issue_response(idp, sign_response=True, sign_assertion=True)
    assert sorted(calls) == sorted([ASSERTION_NODE, RESPONSE_NODE])
    assert len(parse_xml(xml).findall(".//ds:SignatureValue", NS)) == 2


def test_installed_sp_verifies_in_process(make_idp: MakeIdp, make_sp: MakeSp, monkeypatch: pytest.MonkeyPatch) -> None:
    xml = issue_response(make_idp())
    sp = make_sp(in_process=True)
    calls: list[str] = []
    original = InProcessXmlSecBackend.validate_signature

    def counting(self: InProcessXmlSecBackend, *args: Any, **kwargs: Any) -> bool:
        calls.append(kwargs["node_name"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(InProcessXmlSecBackend, "validate_signature", counting)
    _forbid_subprocesses(monkeypatch)
    assert sp_parse(sp, xml).name_id.text == NAME_ID_VALUE
    assert sorted(calls) == sorted([ASSERTION_NODE, RESPONSE_NODE])


def test_install_accepts_a_security_context_and_refuses_other_objects(make_idp: MakeIdp) -> None:
    idp = make_idp(in_process=False)
    backend = install_in_process_backend(idp.sec, allow_sha1=True)
    assert idp.sec.crypto is backend and backend.allow_sha1
    with pytest.raises(TypeError):
        install_in_process_backend(object())


# -- forgeries ------------------------------------------------------------------------------------------------------
# (signature wrapping, signature exclusion and DOCTYPE/entity attacks: tests/security/test_attack_saml_messages.py)


@pytest.mark.parametrize("original, forged", [("alice@example.org", "mallory@example.org"), (NAME_ID_VALUE, "admin")])
def test_content_changed_after_signing_is_refused(
    make_idp: MakeIdp, make_sp: MakeSp, backend: InProcessXmlSecBackend, idp_keys: KeyPair, original: str, forged: str
) -> None:
    xml = issue_response(make_idp())
    assert xml.count(original) == 1
    tampered = xml.replace(original, forged)
    refuse_both(backend, tampered, idp_keys.cert_file, match="invalid")
    with pytest.raises(SignatureError):
        sp_parse(make_sp(in_process=True), tampered)


def test_signature_by_another_key_is_refused(
    make_idp: MakeIdp, make_sp: MakeSp, backend: InProcessXmlSecBackend, idp_keys: KeyPair, attacker_keys: KeyPair
) -> None:
    xml = issue_response(make_idp(keys=attacker_keys))
    # even when the attacker copies the IdP's real certificate into ds:KeyInfo
    xml = xml.replace(attacker_keys.cert_b64, idp_keys.cert_b64)
    refuse_both(backend, xml, idp_keys.cert_file, match="invalid")
    with pytest.raises(SignatureError):
        sp_parse(make_sp(in_process=True), xml)


def test_attacker_certificate_in_keyinfo_does_not_validate_a_foreign_signature(
    make_idp: MakeIdp, make_sp: MakeSp, backend: InProcessXmlSecBackend, idp_keys: KeyPair, attacker_keys: KeyPair
) -> None:
    xml = issue_response(make_idp(keys=attacker_keys))
    certs = [c.text for c in parse_xml(xml).iterfind(".//ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)]
    assert certs == [attacker_keys.cert_b64, attacker_keys.cert_b64]
    verify_both(backend, xml, attacker_keys.cert_file)  # self-consistent, signed by the KeyInfo cert...
    refuse_both(backend, xml, idp_keys.cert_file, match="invalid")  # ...but not by the trusted one
    with pytest.raises(SignatureError):
        sp_parse(make_sp(in_process=True), xml)


@pytest.mark.parametrize(
    "sign_alg, digest_alg", [(SIG_RSA_SHA1, DIGEST_SHA1), (SIG_RSA_SHA256, DIGEST_SHA1), (SIG_RSA_SHA1, DIGEST_SHA256)]
)
def test_sha1_is_refused_unless_allowed(
    make_idp: MakeIdp, make_sp: MakeSp, idp_keys: KeyPair, sign_alg: str, digest_alg: str
) -> None:
    xml = issue_response(make_idp(in_process=False, sign_alg=sign_alg, digest_alg=digest_alg))
    refuse_both(InProcessXmlSecBackend(), xml, idp_keys.cert_file, match="allow_sha1")
    with pytest.raises(SignatureError):
        sp_parse(make_sp(in_process=True), xml)
    verify_both(InProcessXmlSecBackend(allow_sha1=True), xml, idp_keys.cert_file)
    assert sp_parse(make_sp(in_process=True, allow_sha1=True), xml).name_id.text == NAME_ID_VALUE


def test_sha1_signing_needs_the_opt_in_too(make_idp: MakeIdp, idp_keys: KeyPair) -> None:
    with pytest.raises(SignatureError, match="allow_sha1"):
        issue_response(make_idp(sign_alg=SIG_RSA_SHA1, digest_alg=DIGEST_SHA1))
    xml = issue_response(make_idp(allow_sha1=True, sign_alg=SIG_RSA_SHA1, digest_alg=DIGEST_SHA1))
    verify_both(InProcessXmlSecBackend(allow_sha1=True), xml, idp_keys.cert_file)


# -- keys and threads -----------------------------------------------------------------------------------------------


def test_signing_key_is_cached_per_path_and_mtime(
    make_idp: MakeIdp, idp_keys: KeyPair, backend: InProcessXmlSecBackend
) -> None:
    def cached_private_keys() -> list[tuple[object, ...]]:
        return [k for k in backend._keys._keys if k[0] == "private"]

    template = issue_response(make_idp(in_process=False), sign_response=False, sign_assertion=True)
    _, assertion_id = ids_of(template)
    for _ in range(3):
        backend.sign_statement(template, ASSERTION_NODE, idp_keys.key_file, assertion_id)
    assert len(cached_private_keys()) == 1
    st = os.stat(idp_keys.key_file)
    os.utime(idp_keys.key_file, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    backend.sign_statement(template, ASSERTION_NODE, idp_keys.key_file, assertion_id)
    assert len(cached_private_keys()) == 2


def test_concurrent_signing_and_verification(make_idp: MakeIdp, idp_keys: KeyPair) -> None:
    idp = make_idp()
    crypto = idp.sec.crypto
    documents = [issue_response(idp) for _ in range(4)]
    errors: list[BaseException] = []

    def work(xml: str) -> None:
        try:
            response_id, assertion_id = ids_of(xml)
            for _ in range(25):
                resigned = crypto.sign_statement(xml, RESPONSE_NODE, idp_keys.key_file, response_id)
                verify_both(crypto, resigned, idp_keys.cert_file)
                assert assertion_id in resigned
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(doc,)) for doc in documents * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
