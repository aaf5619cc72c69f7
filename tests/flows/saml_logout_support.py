"""SAML single logout: status codes, turning SLO on, signing in, sending LogoutRequests and reading what each SP
receives; shared by the logout flow tests and the logout attack tests.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
from saml2.sigver import verify_redirect_signature
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from tests.flows.federation import Federation
from tests.flows.saml_peers import TestSp
from tests.peers.browser import Browser

STATUS = "urn:oasis:names:tc:SAML:2.0:status:"


SUCCESS, PARTIAL, RESPONDER = STATUS + "Success", STATUS + "PartialLogout", STATUS + "Responder"


REQUESTER, DENIED, UNKNOWN_PRINCIPAL = STATUS + "Requester", STATUS + "RequestDenied", STATUS + "UnknownPrincipal"


def enable_slo(federation: Federation, *names: str) -> None:
    """Re-register SPs ``names`` with SingleLogoutService endpoints (same entity ids and keys) and reconnect them."""
    for name in names:
        old = federation.sps[name]
        federation.sps[name] = sp = TestSp(old.entity_id, old.keys, slo=True)
        (federation.folder / "metadata" / "saml-sp" / f"{name}.xml").write_text(sp.metadata())
    with federation.app.app_context():
        federation.app.extensions["broker"].registry.reload()
    idp_metadata = requests.get(federation.url + "/saml2/idp/metadata", timeout=10).text
    for name in names:
        federation.sps[name].connect(idp_metadata)


@dataclass(frozen=True)
class SignedIn:
    name_id: Any  # pysaml2 NameID
    session_index: str


def sign_in(federation: Federation, browser: Browser, sp: str, **kwargs: Any) -> SignedIn:
    request_id, page = federation.login(browser, sp, **kwargs)
    response = federation.sps[sp].parse(browser.form_fields(page)["SAMLResponse"], request_id)
    return SignedIn(response.assertion.subject.name_id, response.assertion.authn_statement[0].session_index)


def idp_of(sp: TestSp) -> str:
    return str(next(iter(sp.client.metadata.identity_providers())))


def idp_slo(sp: TestSp, binding: str) -> str:
    return str(sp.client.metadata.single_logout_service(idp_of(sp), binding, "idpsso")[0]["location"])


def logout_request(sp: TestSp, name_id: Any, session_index: str | None, binding: str = BINDING_HTTP_REDIRECT, *,
                   sign: bool = True, relay_state: str = "rs-logout",
                   destination: str | None = None) -> tuple[str, str, dict[str, str]]:
    """(request id, URL, POST fields) of a LogoutRequest made by the SP with pysaml2; for Redirect the URL carries
    the (signed) query and the fields are empty."""
    url = idp_slo(sp, binding)
    request_id, message = sp.client.create_logout_request(
        destination or url, idp_of(sp), name_id=name_id, session_indexes=[session_index] if session_index else None,
        sign=sign and binding == BINDING_HTTP_POST, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)
    if binding == BINDING_HTTP_POST:
        return request_id, url, {"SAMLRequest": base64.b64encode(str(message).encode()).decode(),
                                 "RelayState": relay_state}
    info = sp.client.apply_binding(BINDING_HTTP_REDIRECT, str(message), url, relay_state, sign=sign,
                                   sigalg=SIG_RSA_SHA256)
    return request_id, dict(info["headers"])["Location"], {}


def send(browser: Browser, url: str, fields: dict[str, str]) -> requests.Response:
    return browser.post(url, fields, follow=False) if fields else browser.get(url, follow=False)


@dataclass(frozen=True)
class Delivered:
    """A message the broker sent through the browser: where to, by which binding, its parameters."""

    binding: str
    url: str
    params: dict[str, str]


def delivered(browser: Browser, page: requests.Response) -> Delivered:
    if page.status_code == 303:
        parts = urlsplit(page.headers["Location"])
        base = f"{parts.scheme}://{parts.netloc}{parts.path}"
        return Delivered(BINDING_HTTP_REDIRECT, base, dict(parse_qsl(parts.query, keep_blank_values=True)))
    assert page.status_code == 200 and browser.is_self_submitting(page), (page.status_code, page.text[:500])
    action = browser._form(page, 0).action
    return Delivered(BINDING_HTTP_POST, str(action), browser.form_fields(page))


def redirect_signed_by_idp(sp: TestSp, params: dict[str, str]) -> bool:
    """pysaml2's own check of a Redirect-binding signature with the IdP's metadata certificates."""
    certs = sp.client.metadata.certs(idp_of(sp), "idpsso", "signing")
    return any(verify_redirect_signature(params, sp.client.sec.sec_backend, cert) for _, cert in certs)


def sp_receives_request(sp: TestSp, message: Delivered) -> Any:
    """The SP checks and parses the broker's LogoutRequest (signature verified by pysaml2)."""
    if message.binding == BINDING_HTTP_REDIRECT:
        assert redirect_signed_by_idp(sp, message.params)
    parsed = sp.client.parse_logout_request(message.params["SAMLRequest"], message.binding)
    if message.binding == BINDING_HTTP_POST:
        assert parsed.message.signature is not None  # and pysaml2 verified it with xmlsec1
    return parsed.message


def sp_answers(sp: TestSp, request: Any, relay_state: str | None, binding: str = BINDING_HTTP_REDIRECT,
               status: Any = None) -> tuple[str, dict[str, str]]:
    """(URL, fields) of the SP's signed LogoutResponse to the broker, made by pysaml2."""
    url = idp_slo(sp, binding)
    response = sp.client.create_logout_response(request, [binding], status=status, sign=binding == BINDING_HTTP_POST,
                                                sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)
    if binding == BINDING_HTTP_POST:
        fields = {"SAMLResponse": base64.b64encode(str(response).encode()).decode()}
        return url, {**fields, "RelayState": relay_state} if relay_state else fields
    info = sp.client.apply_binding(BINDING_HTTP_REDIRECT, str(response), url, relay_state or "", response=True,
                                   sign=True, sigalg=SIG_RSA_SHA256)
    return dict(info["headers"])["Location"], {}


def sp_receives_response(sp: TestSp, message: Delivered, request_id: str) -> tuple[str, str | None]:
    """The SP checks the broker's LogoutResponse with pysaml2: (top-level, second-level) status."""
    if message.binding == BINDING_HTTP_REDIRECT:
        assert redirect_signed_by_idp(sp, message.params)
        xml = sp.client.unravel(message.params["SAMLResponse"], BINDING_HTTP_REDIRECT, "logout_response")
    else:
        xml = base64.b64decode(message.params["SAMLResponse"]).decode()
        assert sp.client.sec.correctly_signed_logout_response(xml, must=True)  # xmlsec1, the IdP's metadata cert
        if samlp.logout_response_from_string(xml).status.status_code.value == SUCCESS:
            assert sp.client.parse_logout_request_response(message.params["SAMLResponse"], BINDING_HTTP_POST)
    response = samlp.logout_response_from_string(xml)
    assert response.in_response_to == request_id
    assert response.issuer.text == idp_of(sp)
    assert response.destination == message.url
    code = response.status.status_code
    return code.value, code.status_code.value if code.status_code is not None else None


def still_signed_in(federation: Federation, browser: Browser, hits: int) -> bool:
    """Whether a new login at sp1 is answered from the SSO session (the upstream was asked ``hits`` times)."""
    sign_in(federation, browser, "sp1")
    return federation.provider.hits("authorize") == hits
