"""Trust in a metadata document: its enveloped signature against a pinned certificate, and its validity.

Signature (SAML 2.0 Metadata §3, XML Signature enveloped profile as SAML core §5.4 constrains it):

- the signature is the one direct ``ds:Signature`` child of the document element;
- ``SignedInfo`` has exactly one ``ds:Reference``, whose URI is ``""`` (the whole document) or ``#`` + the root
  element's ``ID`` (and that ID names exactly one element);
- transforms are enveloped-signature plus exclusive c14n; canonicalization is exclusive c14n; signature and
  digest algorithms come from the allow-lists of :mod:`broker.saml.xmlsec_backend` (RSA/ECDSA with SHA-256,
  384 or 512): SHA-1 is refused;
- the key is the PINNED certificate from the operator's configuration. ``ds:KeyInfo`` in the document is
  never used: anyone can put a certificate there.

Validity (SAML 2.0 Metadata §2.3.2 ``validUntil`` and ``cacheDuration``, on the document element):
a document whose ``validUntil`` has passed is refused; ``cacheDuration`` (an ISO 8601 duration such as
``PT6H`` or ``P1D``) caps how long the copy is used before it is fetched again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import xmlsec

from broker.saml.signature_profile import ProfileViolation, check_signed_info, verify_with
from broker.saml.xmlsec_backend import DS_NS, NCNAME

__all__ = ["MetadataRefused", "Validity", "document_validity", "is_signed", "parse_duration", "parse_instant",
           "verify_signature"]

_PEM_CERT: Final = re.compile(rb"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----")
_DURATION: Final = re.compile(
    r"P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)


class MetadataRefused(ValueError):
    """The document must not be trusted (bad or missing signature, expired); the message says why."""


def _ds(local: str) -> str:
    return f"{{{DS_NS}}}{local}"


def is_signed(root: Any) -> bool:
    return root.find(_ds("Signature")) is not None


def _check_profile(root: Any, signature: Any) -> tuple[Any, Any]:
    """The enveloped-signature profile (``broker.saml.signature_profile``) on the document element: the Reference
    is "" or "#" + the root's ID, which must be a valid xs:ID naming no other element."""
    root_id = root.get("ID")
    try:
        methods = check_signed_info(signature, {"", f"#{root_id}"} if root_id else {""}, "the document element")
    except ProfileViolation as exc:
        raise MetadataRefused(f"signature: {exc}") from exc
    if signature.find(f"{_ds('SignedInfo')}/{_ds('Reference')}").get("URI"):
        if not NCNAME.fullmatch(root_id):
            raise MetadataRefused(f"signature: the document ID {root_id!r} is not a valid xs:ID")
        if len(root.xpath("//*[@ID=$v]", v=root_id)) != 1:
            raise MetadataRefused(f"signature: the ID {root_id!r} names more than one element")
    return methods


def verify_signature(root: Any, pinned_pem: bytes, *, pinned_name: str = "the pinned certificate") -> None:
    """Verify the document element's enveloped signature with the pinned certificate(s) or raise
    :class:`MetadataRefused`. A PEM file with several certificates (a key rollover) accepts any of them."""
    signatures = root.findall(_ds("Signature"))
    if len(signatures) != 1:
        raise MetadataRefused(f"signature: expected one ds:Signature on the document element, found {len(signatures)}")
    signature = signatures[0]
    methods = _check_profile(root, signature)
    certificates = _PEM_CERT.findall(pinned_pem)
    if not certificates:
        raise MetadataRefused(f"{pinned_name} holds no PEM certificate")
    xmlsec.tree.add_ids(root, ["ID"])
    last: Exception | None = None
    for pem in certificates:
        try:
            key = xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatCertPem)
        except xmlsec.Error as exc:
            raise MetadataRefused(f"{pinned_name} is not a usable certificate: {exc}") from exc
        try:
            verify_with(signature, key, methods)  # never a key from ds:KeyInfo
            return
        except xmlsec.Error as exc:  # VerificationError included: try the next pinned certificate
            last = exc
    raise MetadataRefused(f"signature: invalid for {pinned_name} ({last})")


def parse_instant(text: str) -> datetime:
    """An xs:dateTime; without a zone it is taken as UTC (SAML core §1.3.3 requires UTC)."""
    value = datetime.fromisoformat(text.strip())
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 / xs:duration (``PT6H``, ``P1D``, ``P1DT12H``); a year is 365 days, a month 30.
    Negative or empty durations raise ``ValueError``."""
    match = _DURATION.fullmatch(text.strip())
    if not match or text.strip() in ("P", "PT") or text.strip().endswith("T"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration")
    g = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return timedelta(days=g["y"] * 365 + g["mo"] * 30 + g["w"] * 7 + g["d"], hours=g["h"], minutes=g["mi"],
                     seconds=g["s"])


@dataclass(frozen=True)
class Validity:
    valid_until: datetime | None
    cache_duration: timedelta | None
    notes: tuple[str, ...] = ()


def document_validity(root: Any, now: datetime) -> Validity:
    """``validUntil`` and ``cacheDuration`` of the document element (§2.3.2); refuse an expired document.

    An unreadable ``validUntil`` is refused too (it could have meant any date); an unreadable
    ``cacheDuration`` is only noted, as the refresh interval then applies.
    """
    notes: list[str] = []
    valid_until = None
    if (until := root.get("validUntil")) is not None:
        try:
            valid_until = parse_instant(until)
        except ValueError as exc:
            raise MetadataRefused(f"validUntil {until!r} is not an xs:dateTime") from exc
        if valid_until <= now:
            raise MetadataRefused(f"expired: validUntil {until} has passed")
    cache_duration = None
    if (duration := root.get("cacheDuration")) is not None:
        try:
            cache_duration = parse_duration(duration)
        except ValueError:
            notes.append(f"cacheDuration {duration!r} is not an ISO 8601 duration; ignored")
    return Validity(valid_until, cache_duration, tuple(notes))
