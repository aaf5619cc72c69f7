"""The upstream SAML Response verifier (``broker.upstream.saml_response``) against a real pysaml2 IdP.

Every response here is issued by ``tests.peers.saml_idp.TestIdp`` (pysaml2 with the ``xmlsec1`` program): the
accepted cases prove interoperability with the reference implementation; the refusals of forged messages are in
``tests/security/test_attack_saml_upstream_response.py``.
"""

from __future__ import annotations

import base64
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import lxml.html  # type: ignore[import-untyped]
import pytest
import requests
from lxml import etree
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.saml import AuthnContextClassRef
from saml2.samlp import RequestedAuthnContext
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from broker.upstream.saml_identity import identity_from
from broker.upstream.saml_response import (
    ResponseRefused,
    SamlAttribute,
    UpstreamStatus,
    VerifiedAssertion,
    verify_response,
)
from broker.upstream.saml_settings import UpstreamIdp
from tests.peers.saml_idp import (
    AES128_GCM,
    AES256_CBC,
    AES256_GCM,
    PASSWORDPROTECTEDTRANSPORT,
    TRIPLEDES_CBC,
    IdpUser,
    IdpWorld,
    TestIdp,
    make_idp_world,
)
from tests.peers.servers import LateApp, RunningServer, serve
from tests.upstream.saml_response_support import IDENTITY, NAME_ID, expectations, issue, now, verify

MAIL_OID = "urn:oid:0.9.2342.19200300.100.1.3"
GIVEN_NAME_OID = "urn:oid:2.5.4.42"
URI_FORMAT = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
STATUS = "urn:oasis:names:tc:SAML:2.0:status:"


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> IdpWorld:
    return make_idp_world(tmp_path_factory.mktemp("upstream-saml"))


@pytest.fixture
def request_id() -> str:
    return "id-" + secrets.token_hex(16)


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


# -- the IdP peer's SSO endpoints (tests.peers.saml_idp.TestIdp.app), driven by a pysaml2 SP --------------------------

@dataclass
class ServedIdp:
    idp: TestIdp
    server: RunningServer
    sp: Any  # the pysaml2 Saml2Client standing in for the broker's request side
    world: IdpWorld
    app: Any

    @property
    def state(self) -> Any:
        return self.app.extensions["test_idp"]


USER = IdpUser(NAME_ID, IDENTITY, authn_contexts=(PASSWORDPROTECTEDTRANSPORT,))


@pytest.fixture
def served(world: IdpWorld) -> Iterator[ServedIdp]:
    late = LateApp()
    server = serve(late)
    idp = TestIdp(server.url, world.idp.key_file, world.idp.cert_file, sp_metadata=world.sp_metadata)
    app = idp.app(USER)
    late.target = app
    conf = SPConfig().load({
        "entityid": world.sp_entity_id, "key_file": world.sp_key_file, "cert_file": world.sp_cert_file,
        "xmlsec_binary": shutil.which("xmlsec1"), "metadata": {"inline": [idp.metadata()]},
        "service": {"sp": {"endpoints": {"assertion_consumer_service": [(world.acs_url, BINDING_HTTP_POST)]},
                           "authn_requests_signed": True, "signing_algorithm": SIG_RSA_SHA256,
                           "digest_algorithm": DIGEST_SHA256}},
    })
    try:
        yield ServedIdp(idp, server, Saml2Client(config=conf), world, app)
    finally:
        server.stop()


def redirect_login(served: ServedIdp, browser: requests.Session, **kwargs: Any) -> tuple[str, dict[str, str]]:
    """A signed Redirect-binding AuthnRequest to the IdP; (request ID, fields of the form it posts to the ACS)."""
    request_id, info = served.sp.prepare_for_authenticate(binding=BINDING_HTTP_REDIRECT, sigalg=SIG_RSA_SHA256,
                                                          relay_state="rs-1", **kwargs)
    page = browser.get(dict(info["headers"])["Location"], timeout=10)
    assert page.status_code == 200, page.text
    return request_id, form_of(page.text, served.world.acs_url)


def form_of(page: str, action: str) -> dict[str, str]:
    (form,) = lxml.html.document_fromstring(page).forms
    assert form.action == action
    return {i.name: i.value for i in form.inputs if i.name}


def verify_from(served: ServedIdp, request_id: str, fields: dict[str, str]) -> VerifiedAssertion:
    return verify(served.world, request_id, fields["SAMLResponse"], idp_entity_id=served.idp.entity_id)


def test_idp_app_answers_a_signed_redirect_request(served: ServedIdp) -> None:
    with requests.Session() as browser:
        request_id, fields = redirect_login(served, browser)
    assert fields["RelayState"] == "rs-1"
    verified = verify_from(served, request_id, fields)
    assert (verified.name_id, verified.in_response_to) == (NAME_ID, request_id)
    (seen,) = served.state.seen
    assert (seen.binding, seen.request_id, seen.issuer) == (BINDING_HTTP_REDIRECT, request_id,
                                                           served.world.sp_entity_id)


def test_idp_app_answers_a_signed_post_request(served: ServedIdp) -> None:
    destination = served.idp.entity_id + "/sso/post"
    request_id, authn_request = served.sp.create_authn_request(destination, binding=BINDING_HTTP_POST, sign=True,
                                                               sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)
    saml_request = base64.b64encode(str(authn_request).encode()).decode()
    with requests.Session() as browser:
        page = browser.post(destination, data={"SAMLRequest": saml_request, "RelayState": "rs-2"}, timeout=10)
    assert page.status_code == 200, page.text
    fields = form_of(page.text, served.world.acs_url)
    assert verify_from(served, request_id, fields).name_id == NAME_ID
    assert fields["RelayState"] == "rs-2"


def test_idp_app_refuses_an_unsigned_request(served: ServedIdp) -> None:
    destination = served.idp.entity_id + "/sso/post"
    _, authn_request = served.sp.create_authn_request(destination, binding=BINDING_HTTP_POST, sign=False)
    saml_request = base64.b64encode(str(authn_request).encode()).decode()
    page = requests.post(destination, data={"SAMLRequest": saml_request}, timeout=10)
    assert page.status_code == 400
    assert served.state.refused and not served.state.seen


def test_idp_app_passive_without_session_answers_no_passive(served: ServedIdp) -> None:
    with requests.Session() as browser:
        request_id, fields = redirect_login(served, browser, is_passive="true")
        with pytest.raises(UpstreamStatus) as raised:
            verify_from(served, request_id, fields)
        assert raised.value.sub_status == STATUS + "NoPassive"
        redirect_login(served, browser)  # an interactive login starts the IdP session
        request_id, fields = redirect_login(served, browser, is_passive="true")
        assert verify_from(served, request_id, fields).name_id == NAME_ID
    assert served.state.logins == 2
    assert [s.is_passive for s in served.state.seen] == [True, False, True]


def test_idp_app_force_authn_is_recorded(served: ServedIdp) -> None:
    with requests.Session() as browser:
        request_id, fields = redirect_login(served, browser, force_authn="true")
    assert verify_from(served, request_id, fields).name_id == NAME_ID
    assert served.state.seen[0].force_authn


@pytest.mark.parametrize(("requested", "answer"), [
    (PASSWORDPROTECTEDTRANSPORT, PASSWORDPROTECTEDTRANSPORT),
    ("urn:oasis:names:tc:SAML:2.0:ac:classes:Smartcard", None),
])
def test_idp_app_honours_requested_authn_context(served: ServedIdp, requested: str, answer: str | None) -> None:
    context = RequestedAuthnContext(authn_context_class_ref=[AuthnContextClassRef(text=requested)],
                                    comparison="exact")
    with requests.Session() as browser:
        request_id, fields = redirect_login(served, browser, requested_authn_context=context)
    if answer is None:
        with pytest.raises(UpstreamStatus) as raised:
            verify_from(served, request_id, fields)
        assert raised.value.sub_status == STATUS + "NoAuthnContext"
    else:
        assert verify_from(served, request_id, fields).authn_context_class_ref == answer
    assert served.state.seen[0].requested_contexts == (requested,)


def test_group_attributes_become_one_multi_valued_groups_claim(world: IdpWorld, request_id: str) -> None:
    """isMemberOf (eduPerson) with every AttributeValue, as the role mappings of issue 19 read it; an IdP's
    attribute in the broker's own roles name is never taken as the broker's roles."""
    idp = UpstreamIdp("city", world.idp.entity_id, "City ID", (), (), (world.cert_b64(),))
    response = issue(world, request_id, attributes={"mail": ["a@example.org"],
                                                    "isMemberOf": ["cn=staff,ou=groups", "cn=library,ou=groups"],
                                                    "roles": ["admin"]})
    identity = identity_from(idp, verify(world, request_id, response))

    assert identity.claims["groups"] == ("cn=staff,ou=groups", "cn=library,ou=groups")
    assert "roles" not in identity.claims
