"""SAML AuthnRequests from downstream SPs into ``LoginRequest`` (SAML 2.0 Core §3.4, Bindings §3.4-3.5).

Checks, in order; until the SP and its AssertionConsumerService are known, a failure can only be shown
as a page (``reply`` is None); after that it goes back to the SP as a SAML error Response:

1. size of the encoded message (before any parsing);
2. the XML parses as an AuthnRequest with a valid XML signature if it carries one (pysaml2, which also
   checks Destination against our endpoints);
3. the Issuer is a registered SP;
4. the ACS URL (or index) is one of the SP's HTTP-POST endpoints in its metadata;
5. a signature is present and valid when the SP's metadata (AuthnRequestsSigned) or the broker requires
   one; a Redirect-binding signature is verified over the raw query octets whenever present;
6. IssueInstant within the configured age and clock skew (pysaml2 alone allows a day either way);
7. the NameIDPolicy asks for a format the broker issues.
"""

from __future__ import annotations

import base64
import logging
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT, NAMEID_FORMAT_UNSPECIFIED

from broker.core import errors
from broker.core.assurance import Comparison
from broker.core.model import LoginRequest, Protocol
from broker.downstream.saml_server import IdpServers
from broker.saml import redirect_signature
from broker.saml.catalog import SamlSp, SpCatalog

log = logging.getLogger(__name__)
MAX_MESSAGE_BYTES = 64 * 1024
MAX_XML_BYTES = 256 * 1024  # an AuthnRequest is a few KB; SP-supplied extensions stay far below this
MAX_RELAY_STATE = 1024
ACCEPTED_NAMEID = (None, NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT, NAMEID_FORMAT_UNSPECIFIED)
# Any upstream sign-in over TLS satisfies these; stronger classes go to the core as acr values.
_IMPLIED_CONTEXTS = {
    "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:Password",
}


@dataclass(frozen=True)
class IncomingRequest:
    binding: str  # BINDING_HTTP_REDIRECT or BINDING_HTTP_POST
    saml_request: str
    relay_state: str | None
    sig_alg: str | None = None
    signature: str | None = None
    raw_query: bytes = b""
    idp_hint: str | None = None


def redirect_request(raw_query: bytes) -> IncomingRequest:
    """The HTTP-Redirect binding's parameters (Bindings §3.4.4), read once from the raw query so that the
    message, RelayState and SigAlg parsed are exactly the octets the signature covers."""
    try:
        params = redirect_signature.decoded_params(raw_query)
    except redirect_signature.RedirectSignatureError as exc:
        raise RequestRejected(errors.InvalidRequest(detail=f"ambiguous query: {exc}"), None) from exc
    if not params.get("SAMLRequest"):
        raise RequestRejected(errors.InvalidRequest(detail="SAMLRequest missing"), None)
    return IncomingRequest(
        binding=BINDING_HTTP_REDIRECT, saml_request=params["SAMLRequest"], relay_state=params.get("RelayState"),
        sig_alg=params.get("SigAlg"), signature=params.get("Signature"), raw_query=raw_query,
        idp_hint=params.get("idp_hint"),
    )


def _check_inflated_size(incoming: IncomingRequest) -> None:
    """The Redirect binding DEFLATEs the message (Bindings §3.4.4.1): ~60 KB can inflate to ~60 MB of XML.
    pysaml2 inflates without a limit, and tries to inflate POST messages too (``Entity.unravel``), so for
    both bindings at most ``MAX_XML_BYTES`` are inflated here first."""
    try:
        deflated = base64.b64decode(incoming.saml_request)
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        xml = inflater.decompress(deflated, MAX_XML_BYTES + 1)
    except (ValueError, zlib.error):
        return  # not base64 or not DEFLATE: pysaml2 refuses it on its own
    if len(xml) > MAX_XML_BYTES or inflater.unconsumed_tail:
        raise RequestRejected(errors.InvalidRequest(detail="SAMLRequest inflates beyond the size limit"), None)


class RequestRejected(Exception):
    """A refused AuthnRequest; ``reply`` is set once the SP's return address is trustworthy."""

    def __init__(self, error: errors.BrokerError, reply: LoginRequest | None) -> None:
        super().__init__(error.message)
        self.error, self.reply = error, reply


def _parse(servers: IdpServers, catalog: SpCatalog, incoming: IncomingRequest) -> Any:
    try:
        parsed = servers.server(catalog).parse_authn_request(incoming.saml_request, incoming.binding)
    except Exception as exc:
        name = type(exc).__name__
        # pysaml2 wraps every parse error (a refused DOCTYPE, bad XML) in IncorrectlySigned: log the cause too
        cause = f"; cause {type(exc.__cause__).__name__}: {str(exc.__cause__)[:200]}" if exc.__cause__ else ""
        if name in ("IncorrectlySigned", "SignatureError", "MissingKey"):
            raise RequestRejected(errors.InvalidSignature(detail=f"{name}: {exc}{cause}"), None) from exc
        raise RequestRejected(errors.InvalidRequest(detail=f"unparseable AuthnRequest: {name}"), None) from exc
    if parsed is None or parsed.message is None or parsed.message.issuer is None:
        raise RequestRejected(errors.InvalidRequest(detail="AuthnRequest without Issuer"), None)
    return parsed


def _acs(servers: IdpServers, catalog: SpCatalog, sp: SamlSp, message: Any) -> str:
    if message.protocol_binding not in (None, BINDING_HTTP_POST):
        raise RequestRejected(errors.UnsupportedBinding(detail=f"ProtocolBinding {message.protocol_binding}"), None)
    if message.assertion_consumer_service_url:
        if message.assertion_consumer_service_url not in sp.acs_post_urls:
            raise RequestRejected(errors.UnregisteredReturnUrl(
                detail=f"{sp.entity_id}: ACS URL not in metadata"), None)
        return str(message.assertion_consumer_service_url)
    index = message.assertion_consumer_service_index
    for endpoint in catalog.metadata.assertion_consumer_service(sp.entity_id, BINDING_HTTP_POST) or []:
        if index is None or str(endpoint.get("index")) == str(index):
            return str(endpoint["location"])
    raise RequestRejected(errors.UnregisteredReturnUrl(detail=f"{sp.entity_id}: no ACS at index {index}"), None)




def _check_signature(servers: IdpServers, catalog: SpCatalog, sp: SamlSp, incoming: IncomingRequest,
                     message: Any, reply: LoginRequest) -> None:
    required = servers.settings.want_authn_requests_signed or sp.authn_requests_signed
    if incoming.binding == BINDING_HTTP_REDIRECT:
        if incoming.signature is None:
            if required:
                raise RequestRejected(errors.InvalidSignature(detail="unsigned Redirect request"), reply)
            return
        certs = [redirect_signature.pem_from_base64(cert)
                 for _, cert in catalog.metadata.certs(sp.entity_id, "spsso", "signing")]
        try:
            redirect_signature.verify(incoming.raw_query, incoming.sig_alg or "", incoming.signature, certs,
                                      allow_sha1=sp.entity_id in servers.settings.sha1_allowed_for)
        except redirect_signature.RedirectSignatureError as exc:
            raise RequestRejected(errors.InvalidSignature(detail=str(exc)), reply) from exc
    elif message.signature is None:
        if required:
            raise RequestRejected(errors.InvalidSignature(detail="unsigned POST request"), reply)
    elif sp.entity_id not in servers.settings.sha1_allowed_for and _uses_sha1(message.signature):
        # pysaml2 verified the signature against the SP's metadata certificates; SHA-1 is this SP's only if
        # the operator listed it (XML Signature: SHA-1 is deprecated, RFC 9231 §2.3 / NIST SP 800-131A).
        raise RequestRejected(errors.InvalidSignature(detail="SHA-1 signature from an SP not allowed it"), reply)


def check_size(incoming: IncomingRequest) -> None:
    """The size limits of any message the IdP receives, before it is parsed (also LogoutRequests/Responses)."""
    if len(incoming.saml_request) > MAX_MESSAGE_BYTES:
        raise RequestRejected(errors.InvalidRequest(detail="SAML message too large"), None)
    if incoming.relay_state is not None and len(incoming.relay_state) > MAX_RELAY_STATE:
        raise RequestRejected(errors.InvalidRequest(detail="RelayState too large"), None)
    _check_inflated_size(incoming)


def uses_sha1(signature: Any) -> bool:
    """Whether an XML signature uses SHA-1 for its signature or a digest."""
    return _uses_sha1(signature)


def _uses_sha1(signature: Any) -> bool:
    info = signature.signed_info
    algorithms = [info.signature_method.algorithm] + [ref.digest_method.algorithm for ref in info.reference]
    return any(str(a).endswith(("#rsa-sha1", "#dsa-sha1", "#ecdsa-sha1", "#sha1")) for a in algorithms)


def check_issue_instant(servers: IdpServers, message: Any, now: datetime) -> None:
    """IssueInstant within the configured age and clock skew (any request to the IdP; also LogoutRequests)."""
    try:
        issued = datetime.fromisoformat(str(message.issue_instant).replace("Z", "+00:00"))
    except ValueError as exc:
        raise errors.InvalidRequest(detail="IssueInstant is not a dateTime") from exc
    if issued.tzinfo is None:
        raise errors.InvalidRequest(detail="IssueInstant without time zone")
    skew, max_age = servers.settings.clock_skew, servers.settings.request_max_age
    if issued > now + skew or issued < now - max_age - skew:
        raise errors.RequestExpired(detail=f"IssueInstant {issued.isoformat()}")


def _check_instant(servers: IdpServers, message: Any, now: datetime, reply: LoginRequest) -> None:
    try:
        check_issue_instant(servers, message, now)
    except errors.BrokerError as exc:
        raise RequestRejected(exc, reply) from exc


def _acr_values(message: Any) -> tuple[tuple[str, ...], Comparison]:
    """RequestedAuthnContext (SAML 2.0 Core §3.3.2.2.1): class references and their comparison; a request
    that a password over TLS would meet asks for nothing the broker does not always give."""
    requested = message.requested_authn_context
    if requested is None:
        return (), Comparison.EXACT
    refs = [str(ref.text).strip() for ref in requested.authn_context_class_ref or []]
    try:
        comparison = Comparison.parse(requested.comparison)
    except ValueError:
        comparison = Comparison.EXACT  # the schema allows only the four; pysaml2 has validated it already
    if comparison is not Comparison.BETTER and any(r in _IMPLIED_CONTEXTS for r in refs):
        return (), Comparison.EXACT
    return tuple(refs), comparison


def _hints(message: Any, incoming: IncomingRequest) -> tuple[str, ...]:
    hints = [incoming.idp_hint] if incoming.idp_hint else []
    scoping = message.scoping
    if scoping is not None and scoping.idp_list is not None:
        hints += [str(entry.provider_id) for entry in scoping.idp_list.idp_entry or [] if entry.provider_id]
    return tuple(hints)


def parse_authn_request(servers: IdpServers, catalog: SpCatalog, incoming: IncomingRequest,
                        now: datetime) -> LoginRequest:
    """An AuthnRequest checked as listed in the module doc; ``RequestRejected`` otherwise."""
    check_size(incoming)
    message = _parse(servers, catalog, incoming).message
    issuer = str(message.issuer.text or "").strip()
    sp = catalog.sps.get(issuer)
    if sp is None:
        raise RequestRejected(errors.UnknownParty(detail=f"unknown SP {issuer[:200]!r}"), None)
    acs = _acs(servers, catalog, sp, message)
    name_id_format = message.name_id_policy.format if message.name_id_policy is not None else None
    acr_values, acr_comparison = _acr_values(message)
    reply = LoginRequest(
        downstream=sp.entity_id, protocol=Protocol.SAML, return_to=acs, request_id=str(message.id),
        relay_state=incoming.relay_state, requested_claims=frozenset(), acr_values=acr_values,
        acr_comparison=acr_comparison,
        force_authn=str(message.force_authn).lower() in ("true", "1"),
        passive=str(message.is_passive).lower() in ("true", "1"),
        upstream_hints=_hints(message, incoming),
        protocol_state=(("nameid_format", str(name_id_format or NAMEID_FORMAT_PERSISTENT)),),
    )
    _check_signature(servers, catalog, sp, incoming, message, reply)
    _check_instant(servers, message, now, reply)
    if name_id_format not in ACCEPTED_NAMEID:
        raise RequestRejected(errors.UnsupportedNameIdFormat(detail=f"NameIDPolicy {name_id_format}"), reply)
    return reply
