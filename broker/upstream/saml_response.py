"""Verification of a SAML Response from an upstream identity provider (the broker as SAML SP, Web Browser SSO).

Trusted: ``ResponseExpectations`` (built by the caller from the IdP's metadata and the pending AuthnRequest) and
``now``. Untrusted: the whole POSTed ``SAMLResponse``. The result is a :class:`VerifiedAssertion` or one of::

    Exception
     ├── ResponseRefused   the message is not acceptable (``reason``: operator detail, never shown to citizens)
     └── UpstreamStatus    a well-formed Response with a non-Success status (the IdP's answer to surface)

Order of the checks (SAML core, profiles §4.1.4.3, bindings §3.5): strict base64 and a size cap; hardened
parsing (any DOCTYPE refused); unique IDs; optional schema validation with libxml2 (``saml_schema``); the
Response envelope (Version, IssueInstant, Issuer, Destination, InResponseTo); the Response signature; the
status; exactly one assertion (decrypted when encrypted); the assertion signature; the assertion's content, read
only from the assertion element whose signature (or whose enclosing Response's signature) was verified.

Replay detection by assertion ID is the caller's: keep ``assertion_id`` until ``keep_id_until``.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Any, Final

from broker.upstream import saml_schema
from broker.upstream.saml_assertion import check_in_response_to, check_issued, check_issuer, read_assertion, single
from broker.upstream.saml_decrypt import decrypt_assertion
from broker.upstream.saml_model import (
    ResponseExpectations,
    ResponseRefused,
    SamlAttribute,
    UpstreamStatus,
    VerifiedAssertion,
)
from broker.upstream.saml_structure import (
    ASSERTION,
    ENCRYPTED_ASSERTION,
    RESPONSE,
    SAMLP_NS,
    StructureError,
    check_signature_places,
    check_unique_ids,
    parse_document,
    signature_of,
    the_assertion,
    verify_enveloped,
)

__all__ = ["ResponseExpectations", "ResponseRefused", "SamlAttribute", "UpstreamStatus", "VerifiedAssertion",
           "verify_response"]

_BASE64: Final = re.compile(r"[A-Za-z0-9+/]*={0,2}")
SUCCESS: Final = "urn:oasis:names:tc:SAML:2.0:status:Success"


def _p(local: str) -> str:
    return f"{{{SAMLP_NS}}}{local}"


def _decode(data: str, max_size: int) -> bytes:
    """Strict base64 (bindings §3.5.4), the size capped before decoding and before parsing."""
    compact = "".join(data.split())
    if len(compact) > (max_size // 3 + 1) * 4:
        raise ResponseRefused(f"the message is larger than {max_size} bytes")
    if len(compact) % 4 or not _BASE64.fullmatch(compact):
        raise ResponseRefused("SAMLResponse is not valid base64")
    try:
        raw = base64.b64decode(compact.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise ResponseRefused("SAMLResponse is not valid base64") from exc
    if len(raw) > max_size:
        raise ResponseRefused(f"the message is larger than {max_size} bytes")
    return raw


def _check_envelope(root: Any, expected: ResponseExpectations, now: datetime, signed: bool) -> None:
    """The Response element (SAML core §3.2.2, bindings §3.5.5.2, profiles §4.1.4.2-3)."""
    check_issued(root, expected, now)
    check_issuer(root, expected, required=False)
    destination = root.get("Destination")
    # bindings §3.5.5.2: a signed message MUST carry Destination; when present it must be our ACS
    if destination is None and signed:
        raise ResponseRefused("the signed Response has no Destination")
    if destination is not None and destination not in expected.acs_urls:
        raise ResponseRefused(f"Destination {destination!r} is not one of the broker's ACS URLs")
    check_in_response_to(root.get("InResponseTo"), expected, "Response")


def _status(root: Any) -> tuple[str, str | None, str | None]:
    """(top-level code, second-level code, message) of samlp:Status (SAML core §3.2.2.1-3.2.2.3)."""
    status = single(root, _p("Status"), "samlp:Status")
    code = single(status, _p("StatusCode"), "samlp:StatusCode")
    sub = code.find(_p("StatusCode"))
    message = status.find(_p("StatusMessage"))
    value = code.get("Value")
    if not value:
        raise ResponseRefused("StatusCode has no Value")
    return value, None if sub is None else sub.get("Value"), None if message is None else message.text


def verify_response(saml_response_b64: str, expected: ResponseExpectations, now: datetime) -> VerifiedAssertion:
    """Verify a POSTed SAMLResponse (Web Browser SSO profile, SAML profiles §4.1.4.3) and return its assertion."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    try:
        return _verify(_decode(saml_response_b64, expected.max_size), expected, now)
    except StructureError as exc:
        raise ResponseRefused(str(exc)) from exc


def _verify(raw: bytes, expected: ResponseExpectations, now: datetime) -> VerifiedAssertion:
    root = parse_document(raw)
    if root.tag != RESPONSE:
        raise ResponseRefused(f"the root element is {root.tag}, not samlp:Response")
    check_unique_ids(root)
    if expected.validate_schema:
        saml_schema.validate(root)
    response_signature = signature_of(root)
    _check_envelope(root, expected, now, signed=response_signature is not None)
    status, sub_status, message = _status(root)
    holders = [c for c in root if c.tag in (ASSERTION, ENCRYPTED_ASSERTION)]
    if status != SUCCESS and not holders:
        # an error Response may be unsigned: only its status is read, never an identity
        check_signature_places(root, None)
        if response_signature is not None:
            verify_enveloped(root, response_signature, expected.signing_certs)
        raise UpstreamStatus(status, sub_status, message)
    holder = the_assertion(root)
    check_signature_places(root, holder if holder.tag == ASSERTION else None)
    # SAML core §5.4: the Response signature is verified on the document as received, before any decryption
    if response_signature is not None:
        verify_enveloped(root, response_signature, expected.signing_certs)
    if status != SUCCESS:
        raise UpstreamStatus(status, sub_status, message)
    assertion = holder
    if holder.tag == ENCRYPTED_ASSERTION:
        assertion = decrypt_assertion(holder, expected.decryption_keys)
        check_unique_ids(root)
        the_assertion(root)
        check_signature_places(root, assertion)
        if expected.validate_schema:
            saml_schema.validate(assertion)
    assertion_signature = signature_of(assertion)
    if assertion_signature is not None:
        verify_enveloped(assertion, assertion_signature, expected.signing_certs)
    elif expected.want_assertions_signed:
        raise ResponseRefused("the assertion is not signed and this IdP must sign its assertions")
    if response_signature is None and assertion_signature is None:
        raise ResponseRefused("neither the Response nor the assertion is signed")
    # From here on every value is read from ``assertion``, the verified node (or a child of the verified root).
    return read_assertion(assertion, expected, now)
