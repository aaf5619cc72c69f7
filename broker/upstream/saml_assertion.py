"""The content of a verified SAML assertion (SAML core §2.3-2.7, profiles §4.1.4.2-4.1.4.3).

Trusted: the ``saml:Assertion`` element handed in, whose signature (or whose enclosing Response's signature) the
caller has verified; every value is read from it or its descendants, never from elsewhere in the document.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from broker.upstream.saml_model import ResponseExpectations, ResponseRefused, SamlAttribute, VerifiedAssertion
from broker.upstream.saml_structure import SAML_NS

BEARER: Final = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
ENTITY_FORMAT: Final = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
_XSI_NIL: Final = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_DATETIME: Final = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:Z|\+00:00)")
_KNOWN_CONDITIONS: Final = frozenset({f"{{{SAML_NS}}}AudienceRestriction", f"{{{SAML_NS}}}OneTimeUse",
                                      f"{{{SAML_NS}}}ProxyRestriction"})


def a(local: str) -> str:
    return f"{{{SAML_NS}}}{local}"


def instant(element: Any, name: str, *, required: bool = True) -> datetime | None:
    """An xs:dateTime in UTC (SAML core §1.3.3)."""
    value = element.get(name)
    if value is None:
        if required:
            raise ResponseRefused(f"{element.tag} has no {name}")
        return None
    match = _DATETIME.fullmatch(value)
    if match is None:
        raise ResponseRefused(f"{element.tag} {name} {value!r} is not a UTC xs:dateTime")
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        parsed = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    except ValueError as exc:
        raise ResponseRefused(f"{element.tag} {name} {value!r} is not a valid time") from exc
    return parsed + timedelta(microseconds=int((fraction or "0")[:6].ljust(6, "0")))


def text(element: Any, what: str) -> str:
    """The element's text; refused when it has any child node (element, comment, processing instruction).

    Refusing rather than concatenating: a comment inside a NameID (``user@evil.org<!---->.example.org``) does
    not change the exclusive-c14n digest, so libraries reading only the first text node truncated the value
    (CVE-2017-11427 and relatives, 2018). Legitimate IdPs never send markup inside these simple values.
    """
    if len(element):
        raise ResponseRefused(f"{what} contains markup (comment, element or processing instruction)")
    return str(element.text or "")


def single(parent: Any, tag: str, what: str, *, required: bool = True) -> Any:
    found = parent.findall(tag)
    if len(found) > 1 or (required and not found):
        raise ResponseRefused(f"expected exactly one {what}, found {len(found)}")
    return found[0] if found else None


def check_issuer(element: Any, expected: ResponseExpectations, *, required: bool) -> None:
    """Issuer equals the IdP's entity ID; Format omitted or ``entity`` (profiles §4.1.4.2)."""
    issuer = single(element, a("Issuer"), f"Issuer of {element.tag}", required=required)
    if issuer is None:
        return
    if text(issuer, "Issuer") != expected.idp_entity_id:
        raise ResponseRefused(f"Issuer {issuer.text!r} is not {expected.idp_entity_id!r}")
    if issuer.get("Format", ENTITY_FORMAT) != ENTITY_FORMAT:
        raise ResponseRefused("Issuer Format is not entity")


def check_issued(element: Any, expected: ResponseExpectations, now: datetime) -> None:
    """Version 2.0 and an IssueInstant neither in the future nor older than ``max_age`` (SAML core §2.3.3, §3.2.2)."""
    if element.get("Version") != "2.0":
        raise ResponseRefused(f"{element.tag} Version is {element.get('Version')!r}, not 2.0")
    issued = instant(element, "IssueInstant")
    assert issued is not None
    if issued > now + expected.clock_skew or issued < now - expected.max_age - expected.clock_skew:
        raise ResponseRefused(f"{element.tag} IssueInstant {issued.isoformat()} is outside the accepted window")


def check_in_response_to(value: str | None, expected: ResponseExpectations, where: str) -> None:
    """InResponseTo is the ID of the request sent (profiles §4.1.4.2); absent only when unsolicited is allowed."""
    if expected.in_response_to is None:
        if not expected.allow_unsolicited:
            raise ResponseRefused("unsolicited responses are not accepted from this IdP")
        if value is not None:
            raise ResponseRefused(f"{where} InResponseTo {value!r} names a request the broker did not send")
    elif value != expected.in_response_to:
        raise ResponseRefused(f"{where} InResponseTo {value!r} is not the request sent")


def _confirmation(subject: Any, expected: ResponseExpectations, now: datetime) -> datetime:
    """A bearer SubjectConfirmation (profiles §4.1.4.2-3): Recipient is an ACS URL of ours, NotOnOrAfter in the
    future, no NotBefore in the future, InResponseTo the request sent. Returns its NotOnOrAfter."""
    reasons = []
    for confirmation in subject.findall(a("SubjectConfirmation")):
        if confirmation.get("Method") != BEARER:
            continue
        data = confirmation.find(a("SubjectConfirmationData"))
        if data is None:
            reasons.append("bearer confirmation without SubjectConfirmationData")
            continue
        recipient, until = data.get("Recipient"), instant(data, "NotOnOrAfter", required=False)
        not_before = instant(data, "NotBefore", required=False)
        if recipient not in expected.acs_urls:
            reasons.append(f"Recipient {recipient!r} is not one of the broker's ACS URLs")
        elif until is None:
            reasons.append("bearer SubjectConfirmationData has no NotOnOrAfter")
        elif now >= until + expected.clock_skew:
            reasons.append(f"the subject confirmation expired at {until.isoformat()}")
        elif not_before is not None and now < not_before - expected.clock_skew:
            reasons.append("the subject confirmation is not valid yet")
        else:
            check_in_response_to(data.get("InResponseTo"), expected, "SubjectConfirmationData")
            return until
    raise ResponseRefused("no acceptable bearer SubjectConfirmation: " + ("; ".join(reasons) or "none present"))


def _conditions(assertion: Any, expected: ResponseExpectations, now: datetime) -> datetime | None:
    """Conditions (SAML core §2.5.1): the validity window with skew; every AudienceRestriction names the SP
    (§2.5.1.4), at least one is present (profiles §4.1.4.2); a condition not understood is refused (§2.5.1)."""
    conditions = single(assertion, a("Conditions"), "saml:Conditions")
    not_before = instant(conditions, "NotBefore", required=False)
    until = instant(conditions, "NotOnOrAfter", required=False)
    if not_before is not None and now < not_before - expected.clock_skew:
        raise ResponseRefused(f"the assertion is not valid before {not_before.isoformat()}")
    if until is not None and now >= until + expected.clock_skew:
        raise ResponseRefused(f"the assertion expired at {until.isoformat()}")
    restrictions = 0
    for condition in conditions:
        if not isinstance(condition.tag, str):
            continue
        if condition.tag not in _KNOWN_CONDITIONS:
            raise ResponseRefused(f"condition {condition.tag} is not understood")
        if condition.tag == a("AudienceRestriction"):
            restrictions += 1
            audiences = [text(audience, "Audience") for audience in condition.findall(a("Audience"))]
            if expected.sp_entity_id not in audiences:
                raise ResponseRefused(f"the audience {audiences} does not include {expected.sp_entity_id!r}")
    if not restrictions:
        raise ResponseRefused("the assertion has no AudienceRestriction")
    return until


def _attributes(assertion: Any) -> tuple[SamlAttribute, ...]:
    """Attributes of every AttributeStatement (SAML core §2.7.3); values must be plain text."""
    attributes = []
    for statement in assertion.findall(a("AttributeStatement")):
        for attribute in statement:
            if not isinstance(attribute.tag, str):
                continue
            if attribute.tag != a("Attribute"):
                raise ResponseRefused(f"{attribute.tag} in AttributeStatement is not supported")
            name = attribute.get("Name")
            if not name:
                raise ResponseRefused("an Attribute has no Name")
            values = tuple(text(value, f"the value of {name}") for value in attribute.findall(a("AttributeValue"))
                           if value.get(_XSI_NIL) not in ("true", "1"))
            attributes.append(SamlAttribute(name, attribute.get("NameFormat"), attribute.get("FriendlyName"), values))
    return tuple(attributes)


def read_assertion(assertion: Any, expected: ResponseExpectations, now: datetime) -> VerifiedAssertion:
    """Check and read the verified ``assertion`` (profiles §4.1.4.3: the processing rules of the SP)."""
    check_issued(assertion, expected, now)
    check_issuer(assertion, expected, required=True)
    assertion_id = assertion.get("ID")
    if not assertion_id:
        raise ResponseRefused("the assertion has no ID")
    subject = single(assertion, a("Subject"), "saml:Subject")
    if subject.find(a("EncryptedID")) is not None or subject.find(a("BaseID")) is not None:
        raise ResponseRefused("EncryptedID and BaseID subjects are not supported")
    name_id = single(subject, a("NameID"), "saml:NameID")
    value = text(name_id, "NameID")
    if not value.strip():
        raise ResponseRefused("the NameID is empty")
    confirmed_until = _confirmation(subject, expected, now)
    conditions_until = _conditions(assertion, expected, now)
    statement = single(assertion, a("AuthnStatement"), "saml:AuthnStatement")
    authn_instant = instant(statement, "AuthnInstant")
    assert authn_instant is not None
    since = expected.authenticated_since
    if since is not None and authn_instant < since - expected.clock_skew:
        # SAML Core §3.4.1: with ForceAuthn the IdP "MUST authenticate the presenter directly rather than rely on
        # a previous security context"; an AuthnInstant before the request shows it did not
        raise ResponseRefused(f"ForceAuthn was asked at {since.isoformat()} but the AuthnInstant is "
                              f"{authn_instant.isoformat()}: the IdP did not sign the person in again")
    session_until = instant(statement, "SessionNotOnOrAfter", required=False)
    if session_until is not None and now >= session_until + expected.clock_skew:
        raise ResponseRefused("the authentication session has ended (SessionNotOnOrAfter)")
    context = single(statement, a("AuthnContext"), "saml:AuthnContext")
    class_ref = single(context, a("AuthnContextClassRef"), "AuthnContextClassRef", required=False)
    not_on_or_after = min(t for t in (confirmed_until, conditions_until) if t is not None)
    return VerifiedAssertion(
        issuer=expected.idp_entity_id,
        assertion_id=assertion_id,
        in_response_to=expected.in_response_to,
        name_id=value,
        name_id_format=name_id.get("Format"),
        name_qualifier=name_id.get("NameQualifier"),
        sp_name_qualifier=name_id.get("SPNameQualifier"),
        session_index=statement.get("SessionIndex"),
        authn_instant=authn_instant,
        authn_context_class_ref=None if class_ref is None else text(class_ref, "AuthnContextClassRef").strip(),
        not_on_or_after=not_on_or_after,
        attributes=_attributes(assertion),
        keep_id_until=not_on_or_after + expected.clock_skew,
    )
