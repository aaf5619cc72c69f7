"""What the broker's SAML SP role needs to know: its own endpoints and keys, one upstream IdP, and the state
of one AuthnRequest on its way (frozen dataclasses; no pysaml2 here)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from broker.core import errors

BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"


@dataclass(frozen=True)
class SpSettings:
    """The broker as a SAML service provider toward upstream IdPs (its metadata: ``/saml2/sp/metadata``)."""

    entity_id: str
    acs_url: str  # HTTP-POST Assertion Consumer Service
    slo_redirect_url: str
    slo_post_url: str
    key_file: Path
    cert_file: Path
    encryption_cert_file: Path
    decryption_key_files: tuple[Path, ...]
    clock_skew: timedelta
    xmlsec_binary: str | None
    metadata_valid_for: timedelta = timedelta(days=7)
    #: certificates published beside ``cert_file`` (the next and the previous signing keys)
    extra_cert_files: tuple[Path, ...] = ()


@dataclass(frozen=True)
class UpstreamIdp:
    """One upstream SAML IdP: its registration (``metadata/upstreams/<name>.json``) and, from its metadata,
    its endpoints and certificates. Only these certificates ever verify its answers."""

    name: str
    entity_id: str
    display_name: str
    sso_services: tuple[tuple[str, str], ...]  # (binding, location)
    slo_services: tuple[tuple[str, str, str | None], ...]  # (binding, location, response location)
    signing_certs: tuple[str, ...]  # base64 DER
    want_authn_requests_signed: bool = False
    #: IdP-initiated (unsolicited) Responses are accepted only when the operator turns this on
    allow_unsolicited: bool = False
    want_assertions_signed: bool = False
    #: the operator vouches that this IdP asserts only e-mail addresses it verified
    email_verified: bool = False
    #: a SAML attribute (name or friendly name) naming the person when the NameID is not persistent
    subject_attribute: str | None = None
    #: the binding the broker sends AuthnRequests with, when the IdP offers both (Redirect by default)
    request_binding: str = BINDING_REDIRECT

    def sso_endpoint(self) -> tuple[str, str]:
        """(binding, location) of the SSO service to use: the preferred binding, else the other one."""
        offered = dict(self.sso_services)
        for binding in (self.request_binding, BINDING_REDIRECT, BINDING_POST):
            if binding in offered:
                return binding, offered[binding]
        raise errors.UnknownUpstream(detail=f"IdP {self.entity_id!r} has no SSO service with the Redirect or "
                                            "POST binding in its metadata")

    def slo_endpoint(self) -> tuple[str, str, str | None] | None:
        """The SingleLogoutService to use (Redirect preferred), or None when the IdP has none."""
        for wanted in (BINDING_REDIRECT, BINDING_POST):
            for binding, location, response_location in self.slo_services:
                if binding == wanted:
                    return binding, location, response_location
        return None


@dataclass(frozen=True)
class Outgoing:
    """A SAML message on its way through the browser: a redirect (``fields`` empty) or a form to post."""

    url: str
    fields: tuple[tuple[str, str], ...] = ()

    @property
    def is_post(self) -> bool:
        return bool(self.fields)


@dataclass(frozen=True)
class SamlPending:
    """One AuthnRequest sent: stored server-side under ``relay_state`` (an unguessable handle bound to the
    browser); the ACS accepts only a Response ``InResponseTo`` its ``request_id``."""

    upstream: str
    entity_id: str
    request_id: str
    relay_state: str
    created_at: datetime
    #: the request said ForceAuthn="true" (SAML Core §3.4.1): the AuthnInstant must then be no older than it
    force_authn: bool = False

    def to_json(self) -> str:
        return json.dumps({"upstream": self.upstream, "entity_id": self.entity_id, "request_id": self.request_id,
                           "relay_state": self.relay_state, "created_at": self.created_at.isoformat(),
                           "force_authn": self.force_authn})

    @classmethod
    def from_json(cls, text: str) -> SamlPending:
        """Read back ``to_json``; ``LoginStateInvalid`` when the text is not one."""
        try:
            raw = json.loads(text)
            return cls(str(raw["upstream"]), str(raw["entity_id"]), str(raw["request_id"]),
                       str(raw["relay_state"]), datetime.fromisoformat(raw["created_at"]),
                       raw.get("force_authn") is True)
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise errors.LoginStateInvalid(detail=f"stored SAML request unreadable: {type(exc).__name__}") from exc
