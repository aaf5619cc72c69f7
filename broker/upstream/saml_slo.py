"""Single Logout between the broker (as SP) and an upstream SAML IdP (SAML 2.0 Core §3.7, Profiles §4.4).

Out: a signed LogoutRequest naming the person as the IdP named them (NameID with its qualifiers, SessionIndex),
over HTTP-Redirect (query signature, Bindings §3.4.4.1) or HTTP-POST (enveloped signature); and the broker's
signed LogoutResponse to an IdP-initiated request. In: the IdP's LogoutResponse and LogoutRequest, refused
unless signed by a certificate from *that* IdP's metadata (a Redirect signature over the raw query octets, a
POST signature enveloped in the message), addressed to this SP's endpoint, issued by the IdP, recent, and (a
response) ``InResponseTo`` the request the broker sent. Parsing is hardened (no DOCTYPE, a size cap before and
after inflating).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from saml2 import BINDING_HTTP_REDIRECT, saml, samlp
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from broker.saml import redirect_signature
from broker.upstream.saml_settings import BINDING_POST, Outgoing, UpstreamIdp
from broker.upstream.saml_sp import SamlSp
from broker.upstream.saml_structure import (
    StructureError,
    check_unique_ids,
    parse_document,
    signature_of,
    verify_enveloped,
)

SAMLP: Final = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML: Final = "urn:oasis:names:tc:SAML:2.0:assertion"
SUCCESS: Final = "urn:oasis:names:tc:SAML:2.0:status:Success"
REQUESTER: Final = "urn:oasis:names:tc:SAML:2.0:status:Requester"
MAX_MESSAGE: Final = 64 * 1024
MAX_AGE: Final = timedelta(minutes=10)
#: the upstream session as ``SsoSession.upstream_state`` keeps it
STATE_KEYS: Final = ("name_id", "name_id_format", "name_qualifier", "sp_name_qualifier", "session_index")


class LogoutRefused(Exception):
    """A logout message from an IdP is refused; the text is the operator detail."""


@dataclass(frozen=True)
class IdpLogout:
    """A LogoutRequest or LogoutResponse from an IdP, verified: what the broker acts on."""

    kind: str  # "LogoutRequest" or "LogoutResponse"
    message_id: str
    issuer: str
    in_response_to: str | None
    status: str | None
    name_id: str | None
    session_indexes: tuple[str, ...]


def _decode(value: str, redirect: bool) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise LogoutRefused("the message is not base64") from exc
    if not redirect:
        return raw[: MAX_MESSAGE + 1]
    inflater = zlib.decompressobj(-15)
    try:
        xml = inflater.decompress(raw, MAX_MESSAGE + 1)
    except zlib.error as exc:
        raise LogoutRefused("the Redirect message is not DEFLATE data") from exc
    return xml


def read_message(params: dict[str, str], query_string: bytes | None, idp_for: Any, sp: SamlSp,
                 endpoint: str, now: datetime) -> tuple[IdpLogout, UpstreamIdp]:
    """Verify a logout message from an IdP (``params``: the query or form; ``query_string``: the raw query of a
    Redirect message, None for POST). ``idp_for(entity_id)`` gives the IdP registered under an Issuer."""
    which = "SAMLRequest" if "SAMLRequest" in params else "SAMLResponse"
    value = params.get(which, "")
    if not value or len(value) > 2 * MAX_MESSAGE:
        raise LogoutRefused("no logout message, or one too large")
    xml = _decode(value, redirect=query_string is not None)
    if len(xml) > MAX_MESSAGE:
        raise LogoutRefused("the logout message is too large")
    try:
        root = parse_document(xml)
        check_unique_ids(root)
    except StructureError as exc:
        raise LogoutRefused(str(exc)) from exc
    kind = root.tag.rpartition("}")[2]
    if root.tag not in (f"{{{SAMLP}}}LogoutRequest", f"{{{SAMLP}}}LogoutResponse") \
            or (kind == "LogoutRequest") != (which == "SAMLRequest"):
        raise LogoutRefused(f"{which} carries a {root.tag}")
    issuer = (root.findtext(f"{{{SAML}}}Issuer") or "").strip()
    idp: UpstreamIdp | None = idp_for(issuer)
    if idp is None:
        raise LogoutRefused(f"logout message from an unknown IdP {issuer[:200]!r}")
    _check_signature(root, params, query_string, which, idp)
    _check_envelope(root, endpoint, now, sp.settings.clock_skew)
    status = root.find(f"{{{SAMLP}}}Status/{{{SAMLP}}}StatusCode")
    name_id = root.find(f"{{{SAML}}}NameID")
    return IdpLogout(
        kind=kind, message_id=root.get("ID", ""), issuer=issuer, in_response_to=root.get("InResponseTo"),
        status=status.get("Value") if status is not None else None,
        name_id=(name_id.text or "").strip() if name_id is not None and len(name_id) == 0 else None,
        session_indexes=tuple((e.text or "").strip() for e in root.findall(f"{{{SAMLP}}}SessionIndex")),
    ), idp


def _check_signature(root: Any, params: dict[str, str], query_string: bytes | None, which: str,
                     idp: UpstreamIdp) -> None:
    """Bindings §3.4.4.1 (Redirect: over the raw query octets) or §3.5.4 (POST: enveloped), metadata certs only."""
    if query_string is not None:
        if signature_of(root) is not None:
            raise LogoutRefused("a Redirect message must not carry an XML signature")
        if "Signature" not in params or "SigAlg" not in params:
            raise LogoutRefused("the Redirect message is not signed")
        try:
            redirect_signature.verify(query_string, params["SigAlg"], params["Signature"],
                                      [redirect_signature.pem_from_base64(c) for c in idp.signing_certs],
                                      message_param=which)
        except redirect_signature.RedirectSignatureError as exc:
            raise LogoutRefused(str(exc)) from exc
        return
    signature = signature_of(root)
    if signature is None:
        raise LogoutRefused("the POST message is not signed")
    try:
        verify_enveloped(root, signature, idp.signing_certs)
    except StructureError as exc:
        raise LogoutRefused(str(exc)) from exc


def _check_envelope(root: Any, endpoint: str, now: datetime, skew: timedelta) -> None:
    """Version, Destination (this endpoint, Bindings §3.4.5.2 / §3.5.5.2) and IssueInstant (Core §3.2.1)."""
    if root.get("Version") != "2.0":
        raise LogoutRefused("Version is not 2.0")
    if root.get("Destination") != endpoint:
        raise LogoutRefused(f"Destination {root.get('Destination')!r:.200} is not {endpoint}")
    try:
        issued = datetime.fromisoformat((root.get("IssueInstant") or "").replace("Z", "+00:00"))
    except ValueError as exc:
        raise LogoutRefused("IssueInstant is not a dateTime") from exc
    if issued.tzinfo is None or issued > now + skew or issued < now - MAX_AGE - skew:
        raise LogoutRefused(f"IssueInstant {issued.isoformat()} is not recent")
    expires = root.get("NotOnOrAfter")
    if expires:
        try:
            if datetime.fromisoformat(expires.replace("Z", "+00:00")) <= now - skew:
                raise LogoutRefused("the LogoutRequest has expired (NotOnOrAfter)")
        except ValueError as exc:
            raise LogoutRefused("NotOnOrAfter is not a dateTime") from exc


def _instant(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _send(sp: SamlSp, message: Any, binding: str, destination: str, relay_state: str, response: bool) -> Outgoing:
    client = sp.client
    if binding == BINDING_POST:
        signed = client.sign(message, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)
        field = "SAMLResponse" if response else "SAMLRequest"
        encoded = base64.b64encode(str(signed).encode()).decode("ascii")
        return Outgoing(destination, ((field, encoded), ("RelayState", relay_state)))
    info = client.apply_binding(BINDING_HTTP_REDIRECT, str(message), destination, relay_state=relay_state,
                                response=response, sign=True, sigalg=SIG_RSA_SHA256)
    return Outgoing(dict(info["headers"])["Location"])


def logout_request(sp: SamlSp, idp: UpstreamIdp, state: dict[str, str], relay_state: str,
                   now: datetime) -> tuple[Outgoing, str] | None:
    """A signed LogoutRequest to ``idp`` for the session ``state`` describes (Core §3.7.1), and its ID; None when
    the IdP has no SingleLogoutService or the session holds no NameID."""
    endpoint = idp.slo_endpoint()
    if endpoint is None or not state.get("name_id"):
        return None
    binding, location, _ = endpoint
    message_id = "_" + secrets.token_hex(20)
    name_id = saml.NameID(text=state["name_id"], format=state.get("name_id_format") or None,
                          name_qualifier=state.get("name_qualifier") or None,
                          sp_name_qualifier=state.get("sp_name_qualifier") or None)
    request = samlp.LogoutRequest(
        id=message_id, version="2.0", issue_instant=_instant(now), destination=location,
        issuer=saml.Issuer(text=sp.settings.entity_id, format=saml.NAMEID_FORMAT_ENTITY), name_id=name_id,
        not_on_or_after=_instant(now + MAX_AGE),
        session_index=[samlp.SessionIndex(text=state["session_index"])] if state.get("session_index") else None,
    )
    return _send(sp, request, binding, location, relay_state, response=False), message_id


def logout_response(sp: SamlSp, idp: UpstreamIdp, in_response_to: str, success: bool, relay_state: str | None,
                    now: datetime) -> Outgoing | None:
    """The signed LogoutResponse to an IdP-initiated LogoutRequest (Core §3.7.2), at the IdP's SLO response
    location from its metadata; None when the IdP publishes no SingleLogoutService."""
    endpoint = idp.slo_endpoint()
    if endpoint is None:
        return None
    binding, location, response_location = endpoint
    destination = response_location or location
    status = samlp.Status(status_code=samlp.StatusCode(value=SUCCESS if success else REQUESTER))
    response = samlp.LogoutResponse(
        id="_" + secrets.token_hex(20), version="2.0", issue_instant=_instant(now), destination=destination,
        in_response_to=in_response_to, status=status,
        issuer=saml.Issuer(text=sp.settings.entity_id, format=saml.NAMEID_FORMAT_ENTITY),
    )
    return _send(sp, response, binding, destination, relay_state or "", response=True)
