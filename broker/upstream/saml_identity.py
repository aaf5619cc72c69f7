"""A verified SAML assertion in the broker's vocabulary: the ``UpstreamIdentity`` of the person it names.

Attributes are mapped by their ``Name`` (urn:oid, eIDAS URI, ...), falling back to ``FriendlyName``, through
the one table in ``core.claims``; attributes outside it are dropped, never guessed, and so is one naming a claim
the broker assigns itself (``roles``). A multi-valued claim (``groups``) keeps every AttributeValue. The subject is the
persistent NameID (SAML 2.0 Core §8.3.7), which is opaque, stable and specific to this SP; a transient or
unspecified NameID names nobody for long, so such an answer is refused unless the registration names an
attribute that holds a stable identifier (``subject_attribute``, e.g. an eIDAS ``PersonIdentifier``). The
AuthnContextClassRef becomes the identity's ``acr`` (``core.assurance`` puts it on the scale).
"""

from __future__ import annotations

from broker.core import errors
from broker.core.claims import ClaimKind, ClaimValue, coerce, from_upstream_saml_name
from broker.core.model import EmailTrust, UpstreamIdentity
from broker.upstream.saml_model import SamlAttribute, VerifiedAssertion
from broker.upstream.saml_settings import UpstreamIdp

PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
MAX_SUBJECT = 256  # SAML Core §8.3.7: a persistent identifier is at most 256 characters


def _claims(attributes: tuple[SamlAttribute, ...]) -> dict[str, ClaimValue]:
    claims: dict[str, ClaimValue] = {}
    for attribute in attributes:
        definition = from_upstream_saml_name(attribute.name, attribute.friendly_name)  # never roles
        if definition is None or not attribute.values or definition.name in claims:
            continue
        # a multi-valued claim (groups: isMemberOf, memberOf) takes every AttributeValue, others the first
        value = coerce(definition, list(attribute.values) if definition.kind is ClaimKind.LIST
                       else attribute.values[0])
        if value is not None:
            claims[definition.name] = value
    return claims


def _subject(idp: UpstreamIdp, assertion: VerifiedAssertion) -> str:
    if assertion.name_id_format == PERSISTENT:
        subject = assertion.name_id
    elif idp.subject_attribute:
        found = [a for a in assertion.attributes
                 if idp.subject_attribute in (a.name, a.friendly_name) and len(a.values) == 1]
        if not found or not found[0].values[0].strip():
            raise errors.UpstreamVerificationFailed(
                detail=f"no single-valued {idp.subject_attribute} attribute to identify the person")
        subject = found[0].values[0].strip()
    else:
        raise errors.UpstreamVerificationFailed(
            detail=f"NameID format {assertion.name_id_format!r} is not persistent and no subject_attribute is set")
    if not subject or len(subject) > MAX_SUBJECT:
        raise errors.UpstreamVerificationFailed(detail="the subject identifier is empty or longer than 256")
    return subject


def identity_from(idp: UpstreamIdp, assertion: VerifiedAssertion) -> UpstreamIdentity:
    """The person ``assertion`` (already verified against ``idp``) names, in the broker's vocabulary."""
    claims = _claims(assertion.attributes)
    email_trust = EmailTrust.UNVERIFIED
    claims.pop("email_verified", None)  # a SAML IdP does not say; only the operator can vouch for it
    if "email" in claims and idp.email_verified:
        claims["email_verified"] = True
        email_trust = EmailTrust.VERIFIED
    return UpstreamIdentity(
        upstream=idp.name,
        issuer=idp.entity_id,
        subject=_subject(idp, assertion),
        claims=claims,
        acr=assertion.authn_context_class_ref,
        auth_time=assertion.authn_instant,
        email_trust=email_trust,
    )
