"""A real pysaml2 identity provider as a test peer: the upstream IdP of the broker's SAML SP role.

It is ``saml2.server.Server`` with pysaml2's stock crypto backend (the ``xmlsec1`` program), so everything it
signs or encrypts is made by the reference implementation, and everything the broker's verifier accepts from it
is what a production pysaml2/Shibboleth-like IdP would send. Two ways to use it:

- ``TestIdp.respond(...)``: one base64 SAMLResponse, as the IdP would POST it, for unit and attack tests;
- ``TestIdp.app(user)``: a Flask app serving ``/sso/redirect`` and ``/sso/post`` that parses the AuthnRequest
  (signature checked as a real IdP does), logs ``user`` in without a form and answers with an auto-submitting
  POST form to the AssertionConsumerService. Serve it with ``tests.peers.servers.serve``.
"""

from __future__ import annotations

import base64
import html
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, request
from flask.typing import ResponseReturnValue
from lxml import etree  # type: ignore[import-untyped]
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, class_name, saml, samlp
from saml2.config import IdPConfig, SPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import (
    AUTHN_PASSWORD_PROTECTED,
    NAME_FORMAT_URI,
    NAMEID_FORMAT_PERSISTENT,
    NAMEID_FORMAT_TRANSIENT,
    NameID,
)
from saml2.server import Server
from saml2.sigver import RSA_OAEP_MGF1P, get_pem_wrapped_unwrapped, pre_encryption_part, pre_signature_part
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from broker.keys.keyring import generate_keyring
from broker.saml.attributes import converters

__all__ = ["PASSWORDPROTECTEDTRANSPORT", "IdpUser", "IdpWorld", "TestIdp", "make_idp_world", "sp_metadata"]

PASSWORDPROTECTEDTRANSPORT = AUTHN_PASSWORD_PROTECTED
NO_PASSIVE = samlp.STATUS_NO_PASSIVE
NO_AUTHN_CONTEXT = samlp.STATUS_NO_AUTHN_CONTEXT
AUTHN_FAILED = samlp.STATUS_AUTHN_FAILED
_SESSION_COOKIE = "test_idp_session"
AES128_CBC = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
AES256_CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
AES128_GCM = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
AES256_GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
TRIPLEDES_CBC = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc"
_SESSION_KEYS = {AES128_CBC: "aes-128", AES256_CBC: "aes-256", AES128_GCM: "aes-128", AES256_GCM: "aes-256",
                 TRIPLEDES_CBC: "des-192"}


@dataclass(frozen=True)
class IdpUser:
    """The person the IdP's app logs in without a form. ``authn_contexts``: the classes the person "has"."""

    name_id: str
    attributes: dict[str, list[str]]
    name_id_format: str = NAMEID_FORMAT_PERSISTENT
    authn_contexts: tuple[str, ...] = (PASSWORDPROTECTEDTRANSPORT,)


@dataclass
class SeenRequest:
    """What the app's SSO endpoints received (for tests to assert on)."""

    binding: str
    request_id: str
    issuer: str
    force_authn: bool
    is_passive: bool
    requested_contexts: tuple[str, ...]
    answered_status: str | None = None


@dataclass
class _AppState:
    seen: list[SeenRequest] = field(default_factory=list)
    logins: int = 0
    refused: list[str] = field(default_factory=list)
    #: LogoutRequests the IdP accepted (pysaml2 checked their signatures), as parsed messages
    logouts: list[Any] = field(default_factory=list)
    #: when set, the IdP answers from an earlier sign-in this many seconds ago whatever the request says (it
    #: ignores ForceAuthn: a careless IdP, or someone else's session left in a shared browser)
    reuses_sign_in_from: float | None = None


def _refused(state: _AppState, exc: Exception) -> ResponseReturnValue:
    state.refused.append(f"{type(exc).__name__}: {exc}")
    return "AuthnRequest refused", 400, {"Content-Type": "text/plain"}


def _config(entity_id: str, key_file: str, cert_file: str, sp_metadata: str | None, lifetime_minutes: int,
            want_signed_requests: bool, sign_alg: str = SIG_RSA_SHA256, digest_alg: str = DIGEST_SHA256) -> Any:
    xmlsec = shutil.which("xmlsec1")
    assert xmlsec, "the xmlsec1 program is needed (apt-get install xmlsec1)"
    conf = IdPConfig()
    conf.load({
        "entityid": entity_id,
        "key_file": key_file,
        "cert_file": cert_file,
        "encryption_keypairs": [{"key_file": key_file, "cert_file": cert_file}],
        "xmlsec_binary": xmlsec,
        "metadata": {"inline": [sp_metadata]} if sp_metadata else {},
        "service": {"idp": {
            # read only inside the role section (at the top level pysaml2 would silently use rsa-sha1)
            "signing_algorithm": sign_alg,
            "digest_algorithm": digest_alg,
            "want_authn_requests_signed": want_signed_requests,
            "endpoints": {
                "single_sign_on_service": [(entity_id + "/sso/redirect", BINDING_HTTP_REDIRECT),
                                           (entity_id + "/sso/post", BINDING_HTTP_POST)],
                "single_logout_service": [(entity_id + "/slo/redirect", BINDING_HTTP_REDIRECT),
                                          (entity_id + "/slo/post", BINDING_HTTP_POST)],
            },
            "name_id_format": [NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT],
            "policy": {"default": {"lifetime": {"minutes": lifetime_minutes}, "name_form": NAME_FORMAT_URI}},
        }},
    })
    conf.attribute_converters = converters()
    return conf


class TestIdp:
    """One upstream SAML IdP. ``key_file``/``cert_file``: PEM paths (e.g. from
    ``broker.keys.keyring.generate_keyring``)."""

    __test__ = False

    def __init__(self, entity_id: str, key_file: str, cert_file: str, *, sp_metadata: str | None = None,
                 lifetime_minutes: int = 5, want_signed_requests: bool = True, sign_alg: str = SIG_RSA_SHA256,
                 digest_alg: str = DIGEST_SHA256) -> None:
        self.entity_id, self.key_file, self.cert_file = entity_id, key_file, cert_file
        self.sign_alg, self.digest_alg = sign_alg, digest_alg
        self.lifetime_minutes, self.want_signed_requests = lifetime_minutes, want_signed_requests
        self._server: Any = None
        if sp_metadata is not None:
            self.connect(sp_metadata)

    def metadata(self) -> str:
        """The IdP's metadata (EntityDescriptor with IDPSSODescriptor, signing and encryption KeyDescriptors)."""
        conf = _config(self.entity_id, self.key_file, self.cert_file, None, self.lifetime_minutes,
                       self.want_signed_requests)
        return bytes(create_metadata_string(None, config=conf, valid=24)).decode()

    def connect(self, sp_metadata: str) -> None:
        """Trust the SP (the broker) described by ``sp_metadata``."""
        self._server = Server(config=_config(self.entity_id, self.key_file, self.cert_file, sp_metadata,
                                             self.lifetime_minutes, self.want_signed_requests, self.sign_alg,
                                             self.digest_alg))

    @property
    def server(self) -> Any:
        """The pysaml2 ``Server`` (``connect`` first)."""
        assert self._server is not None, "connect(sp_metadata) first"
        return self._server

    def respond(self, authn_request: str | None = None, *, destination: str, in_response_to: str | None,
                sp_entity_id: str, name_id: str = "user-0001", name_id_format: str = NAMEID_FORMAT_PERSISTENT,
                attributes: dict[str, list[str]] | None = None,
                authn_context_class_ref: str = PASSWORDPROTECTEDTRANSPORT, sign_response: bool = True,
                sign_assertion: bool = True, encrypt_assertion: bool = False, encryption_cert: str | None = None,
                status: tuple[str, str] | None = None, sign_error: bool = False,
                encryption_algorithm: str = AES256_CBC, authn_instant: float | None = None) -> str:
        """The base64 SAMLResponse the IdP would POST to ``destination``.

        ``authn_request`` (the decoded AuthnRequest XML) is only read for its ID when ``in_response_to`` is not
        given; ``None`` with ``in_response_to=None`` is an unsolicited response. ``attributes`` are keyed by
        friendly name (``mail``: sent as ``urn:oid:...`` with NameFormat uri and FriendlyName ``mail``) or by a
        full ``urn:oid:`` name. ``encryption_cert``: PEM of the SP's encryption certificate (default: from the
        SP metadata); ``encryption_algorithm``: the data encryption (AES-CBC or AES-GCM URIs).
        ``status``: (second-level status code, message) for an error Response instead of an
        assertion (signed only with ``sign_error``).
        """
        if in_response_to is None and authn_request is not None:
            in_response_to = samlp.authn_request_from_string(authn_request).id
        server = self.server
        if status is not None:
            xml = server.create_error_response(in_response_to, destination, status, sign=sign_error,
                                               sign_alg=self.sign_alg, digest_alg=self.digest_alg)
            return base64.b64encode(str(xml).encode()).decode("ascii")
        xml = server.create_authn_response(
            dict(attributes or {}),
            in_response_to=in_response_to,
            destination=destination,
            sp_entity_id=sp_entity_id,
            name_id=NameID(format=name_id_format, text=name_id),
            authn={"class_ref": authn_context_class_ref, "authn_auth": self.entity_id,
                   **({"authn_instant": authn_instant} if authn_instant is not None else {})},
            sign_response=sign_response and not encrypt_assertion,
            sign_assertion=sign_assertion,
        )
        if encrypt_assertion:
            xml = self._encrypt(str(xml), sp_entity_id, encryption_cert, encryption_algorithm, sign_response)
        return base64.b64encode(str(xml).encode()).decode("ascii")

    def _encrypt(self, xml: str, sp_entity_id: str, cert: str | None, algorithm: str, sign_response: bool) -> str:
        """Encrypt the (signed) assertion with ``xmlsec1``, then sign the Response, as pysaml2 does.

        pysaml2's own path always uses tripledes-cbc for the data; here the same steps (its encryption template,
        its ``xmlsec1`` backend) run with ``algorithm`` and RSA-OAEP for the key.
        """
        server = self.server
        if cert is None:
            certs = server.metadata.certs(sp_entity_id, "any", "encryption")
            assert certs, f"{sp_entity_id} publishes no encryption certificate; pass encryption_cert"
            cert = certs[0][1]
        wrapped, unwrapped = get_pem_wrapped_unwrapped(cert)
        root = etree.fromstring(xml.encode())
        assertion = root.find(f"{{{saml.NAMESPACE}}}Assertion")
        holder = etree.Element(f"{{{saml.NAMESPACE}}}EncryptedAssertion")
        holder.text = placeholder = "@@assertion@@"
        assertion.addprevious(holder)
        root.remove(assertion)
        # self-contained: serialized alone, the assertion declares every namespace it uses, so it decrypts on its
        # own (exclusive c14n does not depend on where declarations sit: its signature still holds)
        document = etree.tostring(root).decode().replace(placeholder, etree.tostring(assertion).decode())
        template = pre_encryption_part(msg_enc=algorithm, key_enc=RSA_OAEP_MGF1P, encrypt_cert=unwrapped)
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as pem:
            pem.write(wrapped)
            pem.flush()
            encrypted = server.sec.crypto.encrypt_assertion(
                document, pem.name, template, key_type=_SESSION_KEYS[algorithm])
        if not sign_response:
            return str(encrypted)
        root = etree.fromstring(encrypted.encode())
        template_xml = str(pre_signature_part(root.get("ID"), server.sec.my_cert, 1, sign_alg=self.sign_alg,
                                              digest_alg=self.digest_alg))
        root.find(f"{{{saml.NAMESPACE}}}Issuer").addnext(etree.fromstring(template_xml.encode()))
        return str(server.sec.sign_statement(etree.tostring(root).decode(), class_name(samlp.Response()),
                                             node_id=root.get("ID")))

    def app(self, user: IdpUser) -> Flask:
        """The IdP's SSO endpoints, auto-logging in ``user``; ``app.extensions["test_idp"]`` records requests."""
        idp, state = self, _AppState()
        app = Flask("test_idp")
        app.extensions["test_idp"] = state

        @app.route("/sso/redirect", methods=["GET"])
        def sso_redirect() -> ResponseReturnValue:
            args = request.args
            try:
                parsed = idp.server.parse_authn_request(
                    args["SAMLRequest"], BINDING_HTTP_REDIRECT, relay_state=args.get("RelayState"),
                    sigalg=args.get("SigAlg"), signature=args.get("Signature"))
            except Exception as exc:  # a real IdP shows an error page for any bad request
                return _refused(state, exc)
            return idp._answer(parsed, BINDING_HTTP_REDIRECT, args.get("RelayState"), user, state)

        @app.route("/sso/post", methods=["POST"])
        def sso_post() -> ResponseReturnValue:
            try:
                parsed = idp.server.parse_authn_request(request.form["SAMLRequest"], BINDING_HTTP_POST)
            except Exception as exc:
                return _refused(state, exc)
            return idp._answer(parsed, BINDING_HTTP_POST, request.form.get("RelayState"), user, state)

        @app.route("/slo/redirect", methods=["GET"])
        def slo_redirect() -> ResponseReturnValue:
            """SP-initiated logout (Profiles §4.4.4.1): pysaml2 checks the Redirect signature with the SP's
            metadata, and the signed LogoutResponse goes back to the SP's SLO endpoint from its metadata."""
            args = request.args
            try:
                parsed = idp.server.parse_logout_request(
                    args["SAMLRequest"], BINDING_HTTP_REDIRECT, relay_state=args.get("RelayState"),
                    sigalg=args.get("SigAlg"), signature=args.get("Signature"))
            except Exception as exc:
                return _refused(state, exc)
            if parsed is None:
                return "LogoutRequest refused", 400
            state.logouts.append(parsed.message)
            response = idp.server.create_logout_response(parsed.message, [BINDING_HTTP_REDIRECT], sign=False)
            info = idp.server.apply_binding(BINDING_HTTP_REDIRECT, str(response), response.destination,
                                            relay_state=args.get("RelayState", ""), response=True, sign=True,
                                            sigalg=idp.sign_alg)
            return "", 303, {"Location": dict(info["headers"])["Location"],
                             "Set-Cookie": f"{_SESSION_COOKIE}=; Path=/; Max-Age=0"}

        return app

    def logout_request_url(self, sp_slo_url: str, sp_entity_id: str, name_id: str,
                           session_index: str | None = None, name_id_format: str = NAMEID_FORMAT_PERSISTENT) -> str:
        """An IdP-initiated LogoutRequest to the SP, signed for the HTTP-Redirect binding: the URL to visit."""
        _, message = self.server.create_logout_request(
            sp_slo_url, sp_entity_id, name_id=saml.NameID(text=name_id, format=name_id_format),
            session_indexes=[session_index] if session_index else None, sign=False)
        info = self.server.apply_binding(BINDING_HTTP_REDIRECT, str(message), sp_slo_url, relay_state="idp-slo",
                                         sign=True, sigalg=self.sign_alg)
        return str(dict(info["headers"])["Location"])

    def _answer(self, parsed: Any, binding: str, relay_state: str | None, user: IdpUser,
                state: _AppState) -> ResponseReturnValue:
        if parsed is None:
            return "AuthnRequest refused", 400
        message = parsed.message
        sp_entity_id = message.issuer.text
        # the ACS comes from the SP's metadata (or the request's URL when it is registered there), never from
        # an unregistered AssertionConsumerServiceURL
        _, acs = self.server.pick_binding("assertion_consumer_service", bindings=[BINDING_HTTP_POST],
                                          entity_id=sp_entity_id, request=message)
        requested = ()
        if message.requested_authn_context is not None:
            requested = tuple(ref.text for ref in message.requested_authn_context.authn_context_class_ref)
        seen = SeenRequest(binding, message.id, sp_entity_id, message.force_authn in ("true", "1"),
                           message.is_passive in ("true", "1"), requested)
        state.seen.append(seen)
        has_session = request.cookies.get(_SESSION_COOKIE) == "1"
        common = {"destination": acs, "in_response_to": message.id, "sp_entity_id": sp_entity_id}
        context = next((c for c in user.authn_contexts if not requested or c in requested), None)
        if seen.is_passive and not has_session and not seen.force_authn:
            seen.answered_status = NO_PASSIVE
            saml_response = self.respond(status=(NO_PASSIVE, "no session and passive requested"), **common)
        elif context is None:
            seen.answered_status = NO_AUTHN_CONTEXT
            saml_response = self.respond(status=(NO_AUTHN_CONTEXT, "requested class not available"), **common)
        else:
            state.logins += 1  # ForceAuthn or no session: a fresh login; otherwise the SSO session answers
            reused = state.reuses_sign_in_from
            saml_response = self.respond(name_id=user.name_id, name_id_format=user.name_id_format,
                                         attributes=user.attributes, authn_context_class_ref=context,
                                         authn_instant=time.time() - reused if reused is not None else None,
                                         **common)
        page = _post_form(acs, saml_response, relay_state)
        return page, 200, {"Set-Cookie": f"{_SESSION_COOKIE}=1; Path=/; HttpOnly",
                           "Content-Type": "text/html; charset=utf-8"}


def sp_metadata(entity_id: str, acs_urls: tuple[str, ...], key_file: str, cert_file: str) -> str:
    """Metadata of an SP (standing in for the broker's) with POST ACS endpoints, its certificate for signing and
    encryption, and no RequestedAttributes (so that the IdP's policy releases every attribute a test gives)."""
    conf = SPConfig()
    conf.load({
        "entityid": entity_id,
        "key_file": key_file,
        "cert_file": cert_file,
        "encryption_keypairs": [{"key_file": key_file, "cert_file": cert_file}],
        "service": {"sp": {
            "endpoints": {"assertion_consumer_service": [(url, BINDING_HTTP_POST) for url in acs_urls]},
            "authn_requests_signed": True,
            "want_assertions_signed": True,
        }},
    })
    return bytes(create_metadata_string(None, config=conf, valid=24)).decode()


def _post_form(action: str, saml_response: str, relay_state: str | None) -> str:
    relay = (f'<input type="hidden" name="RelayState" value="{html.escape(relay_state)}">'
             if relay_state is not None else "")
    return (
        "<!DOCTYPE html><html><head><title>Continue</title></head>"
        '<body onload="document.forms[0].submit()">'
        f'<form method="post" action="{html.escape(action)}">'
        f'<input type="hidden" name="SAMLResponse" value="{html.escape(saml_response)}">{relay}'
        '<noscript><button type="submit">Continue</button></noscript></form></body></html>'
    )


@dataclass(frozen=True)
class IdpWorld:
    """An upstream IdP trusting an SP (the broker's stand-in), an impostor with the same entity ID and another key,
    and another, genuine IdP. Keys are fresh per world (``make_idp_world``)."""

    idp: TestIdp
    impostor: TestIdp
    other_idp: TestIdp
    sp_entity_id: str
    acs_url: str
    sp_key_file: str
    sp_cert_file: str
    other_sp_key_file: str
    sp_metadata: str

    def cert_b64(self, idp: TestIdp | None = None) -> str:
        """The IdP's signing certificate as in its metadata (base64 DER)."""
        pem = Path((idp or self.idp).cert_file).read_text()
        return "".join(line for line in pem.splitlines() if "-----" not in line)


def make_idp_world(folder: Path, *, sp_entity_id: str = "https://broker.example.org/saml2/sp/metadata",
                   acs_url: str = "https://broker.example.org/saml2/sp/acs") -> IdpWorld:
    """RSA 2048 keys (``broker.keys.keyring.generate_keyring``) for the IdPs and the SP, in ``folder``."""
    for name in ("idp", "impostor", "other-idp", "sp", "other-sp"):
        generate_keyring(folder / name, f"test {name}", bits=2048)

    def key(name: str) -> str:
        return str(folder / name / "signing.key")

    def cert(name: str) -> str:
        return str(folder / name / "signing.crt")

    metadata = sp_metadata(sp_entity_id, (acs_url,), key("sp"), cert("sp"))
    idp_id = "https://idp.city.example/idp/shibboleth"
    return IdpWorld(
        idp=TestIdp(idp_id, key("idp"), cert("idp"), sp_metadata=metadata),
        impostor=TestIdp(idp_id, key("impostor"), cert("impostor"), sp_metadata=metadata),
        other_idp=TestIdp("https://idp.other.example/saml", key("other-idp"), cert("other-idp"),
                          sp_metadata=metadata),
        sp_entity_id=sp_entity_id, acs_url=acs_url, sp_key_file=key("sp"), sp_cert_file=cert("sp"),
        other_sp_key_file=key("other-sp"), sp_metadata=metadata,
    )
