"""The upstream SAML Response verifier (``broker.upstream.saml_response``) against a real pysaml2 IdP.

Every response here is issued by ``tests.peers.saml_idp.TestIdp`` (pysaml2 with the ``xmlsec1`` program): the
accepted cases prove interoperability with the reference implementation; the refusals of forged messages are in
``tests/security/test_attack_saml_upstream_response.py``.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from broker.upstream.saml_response import (
    ResponseExpectations,
    ResponseRefused,
    SamlAttribute,
    UpstreamStatus,
    VerifiedAssertion,
    verify_response,
)
from tests.peers.saml_idp import (
    AES128_GCM,
    AES256_CBC,
    AES256_GCM,
    PASSWORDPROTECTEDTRANSPORT,
    TRIPLEDES_CBC,
    IdpWorld,
    make_idp_world,
)

MAIL_OID = "urn:oid:0.9.2342.19200300.100.1.3"
GIVEN_NAME_OID = "urn:oid:2.5.4.42"
URI_FORMAT = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
IDENTITY = {"mail": ["anna@example.org"], "givenName": ["Anna"], "urn:oid:2.5.4.4": ["Virtanen"]}
NAME_ID = "anna-7f3a9c"
STATUS = "urn:oasis:names:tc:SAML:2.0:status:"


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> IdpWorld:
    return make_idp_world(tmp_path_factory.mktemp("upstream-saml"))


@pytest.fixture
def request_id() -> str:
    return "id-" + secrets.token_hex(16)


def expectations(world: IdpWorld, request_id: str | None, **changes: Any) -> ResponseExpectations:
    """What the broker expects from ``world.idp`` for the AuthnRequest ``request_id``."""
    base = ResponseExpectations(
        sp_entity_id=world.sp_entity_id,
        acs_urls=frozenset({world.acs_url}),
        idp_entity_id=world.idp.entity_id,
        signing_certs=(world.cert_b64(),),
        in_response_to=request_id,
        decryption_keys=(Path(world.sp_key_file).read_bytes(),),
    )
    return replace(base, **changes)


def issue(world: IdpWorld, request_id: str | None, idp: Any = None, **kwargs: Any) -> str:
    """A real base64 SAMLResponse from ``idp`` (default ``world.idp``) for ``request_id``."""
    kwargs.setdefault("attributes", IDENTITY)
    kwargs.setdefault("name_id", NAME_ID)
    return str((idp or world.idp).respond(destination=world.acs_url, in_response_to=request_id,
                                          sp_entity_id=world.sp_entity_id, **kwargs))


def now() -> datetime:
    return datetime.now(UTC)


def verify(world: IdpWorld, request_id: str | None, response: str, **changes: Any) -> VerifiedAssertion:
    return verify_response(response, expectations(world, request_id, **changes), now())


SIGNINGS = [
    pytest.param(True, False, id="response-signed-only"),
    pytest.param(False, True, id="assertion-signed-only"),
    pytest.param(True, True, id="both-signed"),
]


@pytest.mark.parametrize(("sign_response", "sign_assertion"), SIGNINGS)
@pytest.mark.parametrize("validate_schema", [True, False], ids=["schema", "no-schema"])
def test_signed_response_is_accepted(world: IdpWorld, request_id: str, sign_response: bool, sign_assertion: bool,
                                     validate_schema: bool) -> None:
    response = issue(world, request_id, sign_response=sign_response, sign_assertion=sign_assertion)
    before = now()
    verified = verify(world, request_id, response, validate_schema=validate_schema)
    assert verified.issuer == world.idp.entity_id
    assert verified.name_id == NAME_ID
    assert verified.name_id_format == "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
    assert verified.in_response_to == request_id
    assert verified.authn_context_class_ref == PASSWORDPROTECTEDTRANSPORT
    assert verified.session_index
    assert verified.assertion_id.startswith("id")
    assert before - timedelta(minutes=1) <= verified.authn_instant <= before + timedelta(seconds=5)
    # the TestIdp's lifetime is 5 minutes: the replay cache keeps the ID until then plus the clock skew
    assert before + timedelta(minutes=4) < verified.not_on_or_after <= before + timedelta(minutes=5, seconds=5)
    assert verified.keep_id_until == verified.not_on_or_after + timedelta(seconds=120)


def test_attributes_carry_oid_names_and_friendly_names(world: IdpWorld, request_id: str) -> None:
    verified = verify(world, request_id, issue(world, request_id))
    by_name = {a.name: a for a in verified.attributes}
    assert by_name[MAIL_OID] == SamlAttribute(MAIL_OID, URI_FORMAT, "mail", ("anna@example.org",))
    assert by_name[GIVEN_NAME_OID] == SamlAttribute(GIVEN_NAME_OID, URI_FORMAT, "givenName", ("Anna",))
    # sent by its urn:oid name only: no FriendlyName invented
    assert by_name["urn:oid:2.5.4.4"].values == ("Virtanen",)
    assert by_name["urn:oid:2.5.4.4"].friendly_name is None


def test_multi_valued_attribute_keeps_order(world: IdpWorld, request_id: str) -> None:
    response = issue(world, request_id, attributes={"mail": ["a@example.org", "b@example.org"]})
    (mail,) = verify(world, request_id, response).attributes
    assert mail.values == ("a@example.org", "b@example.org")


def test_transient_name_id(world: IdpWorld, request_id: str) -> None:
    response = issue(world, request_id, name_id="_tr4ns13nt",
                     name_id_format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient")
    verified = verify(world, request_id, response)
    assert (verified.name_id, verified.name_id_format) == (
        "_tr4ns13nt", "urn:oasis:names:tc:SAML:2.0:nameid-format:transient")


@pytest.mark.parametrize("algorithm", [AES256_CBC, AES128_GCM, AES256_GCM], ids=["aes256-cbc", "aes128-gcm",
                                                                                  "aes256-gcm"])
@pytest.mark.parametrize(("sign_response", "sign_assertion"), SIGNINGS)
def test_encrypted_assertion_is_decrypted(world: IdpWorld, request_id: str, algorithm: str, sign_response: bool,
                                          sign_assertion: bool) -> None:
    response = issue(world, request_id, encrypt_assertion=True, encryption_algorithm=algorithm,
                     sign_response=sign_response, sign_assertion=sign_assertion)
    assert b"EncryptedAssertion" in base64.b64decode(response)
    assert NAME_ID.encode() not in base64.b64decode(response)
    verified = verify(world, request_id, response)
    assert verified.name_id == NAME_ID
    assert {a.friendly_name for a in verified.attributes} >= {"mail", "givenName"}


def test_encrypted_assertion_with_next_key_during_rollover(world: IdpWorld, request_id: str) -> None:
    response = issue(world, request_id, encrypt_assertion=True)
    keys = (Path(world.other_sp_key_file).read_bytes(), Path(world.sp_key_file).read_bytes())
    assert verify(world, request_id, response, decryption_keys=keys).name_id == NAME_ID


def test_encrypted_assertion_without_the_right_key_is_refused(world: IdpWorld, request_id: str) -> None:
    response = issue(world, request_id, encrypt_assertion=True)
    with pytest.raises(ResponseRefused, match="decrypted"):
        verify(world, request_id, response, decryption_keys=(Path(world.other_sp_key_file).read_bytes(),))
    with pytest.raises(ResponseRefused, match="no decryption key"):
        verify(world, request_id, response, decryption_keys=())


def test_tripledes_encryption_is_refused(world: IdpWorld, request_id: str) -> None:
    response = issue(world, request_id, encrypt_assertion=True, encryption_algorithm=TRIPLEDES_CBC)
    with pytest.raises(ResponseRefused, match="tripledes"):
        verify(world, request_id, response)


def test_rsa_pkcs1_v15_key_transport_is_refused(world: IdpWorld, request_id: str) -> None:
    xml = base64.b64decode(issue(world, request_id, encrypt_assertion=True, sign_response=False))
    root = etree.fromstring(xml)
    method = root.find(".//{http://www.w3.org/2001/04/xmlenc#}EncryptedKey/"
                       "{http://www.w3.org/2001/04/xmlenc#}EncryptionMethod")
    method.set("Algorithm", "http://www.w3.org/2001/04/xmlenc#rsa-1_5")
    with pytest.raises(ResponseRefused, match="rsa-1_5"):
        verify(world, request_id, base64.b64encode(etree.tostring(root)).decode())


def test_assertion_signature_required_when_configured(world: IdpWorld, request_id: str) -> None:
    response = issue(world, request_id, sign_response=True, sign_assertion=False)
    with pytest.raises(ResponseRefused, match="assertion is not signed"):
        verify(world, request_id, response, want_assertions_signed=True)
    signed = issue(world, request_id, sign_response=True, sign_assertion=True)
    assert verify(world, request_id, signed, want_assertions_signed=True).name_id == NAME_ID


def test_unsolicited_response_accepted_only_when_allowed(world: IdpWorld) -> None:
    response = issue(world, None)
    assert verify(world, None, response, allow_unsolicited=True).in_response_to is None
    with pytest.raises(ResponseRefused, match="unsolicited"):
        verify(world, None, response)


def test_either_metadata_certificate_verifies(world: IdpWorld, request_id: str) -> None:
    """Metadata may list the current and the next signing certificate (key rollover at the IdP)."""
    response = issue(world, request_id)
    certs = (world.cert_b64(world.other_idp), world.cert_b64())
    assert verify(world, request_id, response, signing_certs=certs).name_id == NAME_ID


@pytest.mark.parametrize(("code", "signed"), [
    pytest.param(STATUS + "NoPassive", False, id="NoPassive-unsigned"),
    pytest.param(STATUS + "AuthnFailed", True, id="AuthnFailed-signed"),
    pytest.param(STATUS + "NoAuthnContext", False, id="NoAuthnContext-unsigned"),
])
def test_non_success_status_is_surfaced(world: IdpWorld, request_id: str, code: str, signed: bool) -> None:
    response = issue(world, request_id, status=(code, "the IdP says no"), sign_error=signed)
    with pytest.raises(UpstreamStatus) as raised:
        verify(world, request_id, response)
    assert raised.value.status == STATUS + "Responder"
    assert raised.value.sub_status == code
    assert raised.value.message == "the IdP says no"


def test_error_response_for_another_request_is_refused(world: IdpWorld, request_id: str) -> None:
    response = issue(world, "id-someone-elses-request", status=(STATUS + "AuthnFailed", "no"))
    with pytest.raises(ResponseRefused, match="InResponseTo"):
        verify(world, request_id, response)


def test_error_response_signed_by_an_impostor_is_refused(world: IdpWorld, request_id: str) -> None:
    response = issue(world, request_id, idp=world.impostor, status=(STATUS + "AuthnFailed", "no"), sign_error=True)
    with pytest.raises(ResponseRefused, match="does not verify"):
        verify(world, request_id, response)


def test_naive_now_is_a_programming_error(world: IdpWorld, request_id: str) -> None:
    with pytest.raises(ValueError, match="timezone"):
        verify_response(issue(world, request_id), expectations(world, request_id), datetime.now())


def test_refusal_reason_is_for_operators(world: IdpWorld, request_id: str) -> None:
    with pytest.raises(ResponseRefused) as raised:
        verify(world, request_id, "not base64!")
    assert raised.value.reason == str(raised.value) == "SAMLResponse is not valid base64"
