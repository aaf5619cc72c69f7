"""The data of ``broker.upstream.saml_response``: what the caller expects, what a verified assertion says, and
the two refusals (frozen dataclasses and exceptions; no XML here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["ResponseExpectations", "ResponseRefused", "SamlAttribute", "UpstreamStatus", "VerifiedAssertion"]


@dataclass(frozen=True)
class ResponseExpectations:
    sp_entity_id: str  # Audience must contain it (SAML core §2.5.1.4)
    acs_urls: frozenset[str]  # Destination and Recipient must be one of these (SAML profiles §4.1.4.3)
    idp_entity_id: str  # Response/Assertion Issuer must equal it
    signing_certs: tuple[str, ...]  # base64 DER from THAT IdP's metadata only; KeyInfo in the message is ignored
    in_response_to: str | None  # the ID of the AuthnRequest sent; None = unsolicited (only with allow_unsolicited)
    allow_unsolicited: bool = False
    clock_skew: timedelta = timedelta(seconds=120)
    max_size: int = 256 * 1024  # bytes of the decoded message
    want_assertions_signed: bool = False  # False: a signed Response or a signed Assertion suffices
    decryption_keys: tuple[bytes, ...] = ()  # PEM private keys (current + next) for EncryptedAssertion
    validate_schema: bool = True  # libxml2 validation against the SAML 2.0 XSDs (cheap: tens of microseconds)
    max_age: timedelta = timedelta(minutes=10)  # IssueInstant older than this (plus skew) is refused
    #: ForceAuthn was asked at this time: an AuthnInstant before it (minus skew) is refused (SAML Core §3.4.1)
    authenticated_since: datetime | None = None


@dataclass(frozen=True)
class SamlAttribute:
    name: str
    name_format: str | None
    friendly_name: str | None
    values: tuple[str, ...]


@dataclass(frozen=True)
class VerifiedAssertion:
    issuer: str
    assertion_id: str
    in_response_to: str | None
    name_id: str
    name_id_format: str | None
    name_qualifier: str | None
    sp_name_qualifier: str | None
    session_index: str | None
    authn_instant: datetime
    authn_context_class_ref: str | None
    not_on_or_after: datetime  # the earliest expiry (Conditions / SubjectConfirmationData)
    attributes: tuple[SamlAttribute, ...]
    keep_id_until: datetime  # not_on_or_after + clock skew: how long the replay cache must keep assertion_id


class ResponseRefused(Exception):
    """The Response is refused; ``reason`` is for operators and logs, never for citizens."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UpstreamStatus(Exception):
    """The IdP answered with a non-Success status (SAML core §3.2.2.2): top-level and second-level codes."""

    def __init__(self, status: str, sub_status: str | None, message: str | None) -> None:
        super().__init__(f"{status} / {sub_status}: {message}")
        self.status, self.sub_status, self.message = status, sub_status, message
