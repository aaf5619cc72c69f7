"""A SAML app as an operator reviews it: what its metadata says and what the broker will do with it, read from
the pysaml2 store ``load_sp_catalog`` filled (pysaml2's dictionaries stop here), as frozen dataclasses.

What is read (SAML 2.0 Metadata): §2.4.4 ``SPSSODescriptor`` (``AuthnRequestsSigned``,
``AssertionConsumerService`` endpoints §2.2.3 with their bindings, ``NameIDFormat`` §2.4.1), §2.4.1.1
``KeyDescriptor`` (its ``use``, absent meaning both signing and encryption, and the X.509 certificate, shown by
its SHA-256 fingerprint and its notAfter) and §2.4.4.1 ``RequestedAttribute`` (``isRequired``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from broker.registry.sp_settings import SpSettings
from broker.saml.catalog import SpCatalog

_BINDING_PREFIX = "urn:oasis:names:tc:SAML:2.0:bindings:"


@dataclass(frozen=True)
class Endpoint:
    """An ``AssertionConsumerService`` (SAML Metadata §2.2.3 IndexedEndpointType)."""

    binding: str
    location: str
    index: str | None = None

    def __str__(self) -> str:
        return f"{self.location} ({self.binding.removeprefix(_BINDING_PREFIX)})"


@dataclass(frozen=True)
class Certificate:
    """A certificate of a ``KeyDescriptor`` (SAML Metadata §2.4.1.1): ``use`` is "signing", "encryption" or
    "signing and encryption" (no ``use`` attribute); ``not_after`` is None when it is not a readable X.509
    certificate (the registry loads the metadata all the same, and signatures will not verify)."""

    use: str
    sha256: str
    not_after: datetime | None
    subject: str | None

    def __str__(self) -> str:
        until = f"not after {self.not_after:%Y-%m-%d %H:%M} UTC" if self.not_after else "not a readable certificate"
        return f"{self.use}, {until}" + (f", subject {self.subject}" if self.subject else "")


@dataclass(frozen=True)
class RequestedAttribute:
    """An ``AttributeConsumingService/RequestedAttribute`` (SAML Metadata §2.4.4.1)."""

    name: str
    friendly_name: str | None
    name_format: str | None
    required: bool

    def __str__(self) -> str:
        return (self.friendly_name or self.name) + (" (required)" if self.required else "")


@dataclass(frozen=True)
class SpView:
    """One SAML app, as the broker will serve it: its metadata with the operator's ``settings`` applied."""

    entity_id: str
    file: str
    display_name: str
    logo_uri: str | None
    policy_uri: str | None
    acs: tuple[Endpoint, ...]
    certificates: tuple[Certificate, ...]
    name_id_formats: tuple[str, ...]
    requested_attributes: tuple[RequestedAttribute, ...]
    #: what the app receives (its RequestedAttributes, or the settings' ``receive``) and cannot be declined
    claims: frozenset[str]
    required_claims: frozenset[str]
    authn_requests_signed: bool
    settings: SpSettings

    def shown_fields(self) -> dict[str, object]:
        """The reviewed fields by name, for ``diff_sp``: certificates one field each, by fingerprint."""
        shown: dict[str, object] = {
            "display_name": self.display_name, "logo_uri": self.logo_uri, "policy_uri": self.policy_uri,
            "assertion_consumer_services": [str(e) for e in self.acs],
            "name_id_formats": self.name_id_formats,
            "requested_attributes": [str(a) for a in self.requested_attributes],
            "claims": self.claims, "required_claims": self.required_claims,
            "authn_requests_signed": self.authn_requests_signed,
        }
        shown.update({f"certificate (SHA-256 {c.sha256})": str(c) for c in self.certificates})
        for name in ("display_name", "logo_uri", "policy_uri", "allowed_upstreams", "default_upstream",
                     "required_acr", "receive", "required", "disabled"):
            value = getattr(self.settings, name)
            shown[f"settings.{name}"] = value if value is not False else None
        return shown


def _certificate(use: str, text: object) -> Certificate | None:
    if not isinstance(text, str):
        return None
    try:
        der = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    fingerprint = hashlib.sha256(der).hexdigest().upper()
    sha256 = ":".join(fingerprint[i:i + 2] for i in range(0, len(fingerprint), 2))
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return Certificate(use, sha256, None, None)
    return Certificate(use, sha256, cert.not_valid_after_utc, cert.subject.rfc4514_string())


def _certificates(descriptor: dict[str, Any]) -> tuple[Certificate, ...]:
    found = []
    for key in descriptor.get("key_descriptor") or []:
        use = str(key.get("use") or "signing and encryption")
        for data in (key.get("key_info") or {}).get("x509_data") or []:
            cert = _certificate(use, (data.get("x509_certificate") or {}).get("text"))
            if cert is not None:
                found.append(cert)
    return tuple(found)


def _requested(descriptor: dict[str, Any]) -> tuple[RequestedAttribute, ...]:
    found = []
    for service in descriptor.get("attribute_consuming_service") or []:
        for item in service.get("requested_attribute") or []:
            found.append(RequestedAttribute(
                name=str(item.get("name")), friendly_name=item.get("friendly_name"),
                name_format=item.get("name_format"),
                required=str(item.get("is_required", "false")).lower() == "true"))
    return tuple(dict.fromkeys(found))


def sp_views(catalog: SpCatalog, settings: SpSettings) -> tuple[SpView, ...]:
    """The apps of ``catalog`` (one metadata file loaded with ``settings``), by entity id."""
    views = []
    for entity_id, sp in sorted(catalog.sps.items()):
        descriptor = catalog.metadata[entity_id]["spsso_descriptor"][0]
        views.append(SpView(
            entity_id=entity_id, file=sp.source.name, display_name=sp.display_name, logo_uri=sp.logo_uri,
            policy_uri=sp.policy_uri,
            acs=tuple(Endpoint(str(e.get("binding")), str(e.get("location")), e.get("index"))
                      for e in descriptor.get("assertion_consumer_service") or []),
            certificates=_certificates(descriptor),
            name_id_formats=tuple(str(n.get("text")) for n in descriptor.get("name_id_format") or []),
            requested_attributes=_requested(descriptor), claims=sp.requested_claims,
            required_claims=sp.required_claims, authn_requests_signed=sp.authn_requests_signed, settings=settings,
        ))
    return tuple(views)
