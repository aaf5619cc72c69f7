"""Checking a submitted IdP metadata source exactly as the IdP directory will load it (issue 19; README "SAML
identity providers and federations"), without touching the instance: the submission is laid out in a scratch
instance folder as it would be written, then read by the directory's own code.

- An IdP file goes through :func:`broker.registry.metadata_sources.compile_document`, the function the directory
  compiles every source with: the hardened parser and size cap, the SAML metadata schema, ``validUntil`` and
  ``cacheDuration`` (SAML 2.0 Metadata §2.3.2), the enveloped signature against the pinned certificate when one is
  given (SAML 2.0 Metadata §3; never a certificate from the document's ``ds:KeyInfo``), each entity's checks and
  duplicate entity ids. The compiled index lists the identity providers found.
- A federation's TOML goes through :func:`broker.registry.metadata_sources.load_sources` (https URL, the pinned
  ``signing_cert_file`` that must exist, ``refresh_interval`` >= 60 s). Its document is fetched only once applied.
- A certificate must be PEM X.509 and not expired; its SHA-256 fingerprint and expiry are shown.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from broker.core.federations import EntityRow
from broker.core.source_admin import PREVIEW_ENTITIES
from broker.registry.idp_index import CorruptIndex, IdpIndex
from broker.registry.idp_metadata import MetadataError
from broker.registry.metadata_signature import MetadataRefused
from broker.registry.metadata_sources import (
    FEDERATION_FOLDER,
    IDP_FOLDER,
    MIN_REFRESH,
    SourceSpec,
    compile_document,
    load_sources,
)

__all__ = ["Checked", "certificate_facts", "check_federation", "check_idp_file", "federation_toml", "fingerprint"]

#: where a federation's pinned certificate is written, relative to the instance folder (README's example)
CERT_FOLDER = Path("certs") / "federations"


@dataclass(frozen=True)
class Checked:
    problems: tuple[str, ...]
    notes: tuple[str, ...] = ()
    entities: tuple[EntityRow, ...] = ()
    entity_count: int = 0
    facts: tuple[tuple[str, str], ...] = ()
    #: every entity id found (for the diff against the file it replaces)
    entity_ids: frozenset[str] = frozenset()


def fingerprint(pem: bytes) -> str:
    """The SHA-256 of the first certificate's DER, as colon-separated hex (what federations publish)."""
    digest = hashlib.sha256(x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def certificate_facts(pem: bytes, now: datetime, label: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Facts (fingerprint, subject, expiry) of every certificate in ``pem`` and a problem when there is none, one
    does not parse, or one has expired (a pinned certificate that expired would refuse every document)."""
    facts: list[tuple[str, str]] = []
    blocks = [b"-----BEGIN CERTIFICATE-----" + part.split(b"-----END CERTIFICATE-----")[0]
              + b"-----END CERTIFICATE-----\n" for part in pem.split(b"-----BEGIN CERTIFICATE-----")[1:]]
    if not blocks:
        return facts, [f"{label}: not a PEM certificate (-----BEGIN CERTIFICATE-----)"]
    for block in blocks:
        try:
            cert = x509.load_pem_x509_certificate(block)
        except ValueError as exc:
            return facts, [f"{label}: not a readable X.509 certificate ({exc})"]
        expiry = cert.not_valid_after_utc
        facts.append((label, f"SHA-256 {fingerprint(block)}, {cert.subject.rfc4514_string()}, valid until "
                             f"{expiry.isoformat()}"))
        if expiry <= now:
            return facts, [f"{label}: expired at {expiry.isoformat()}"]
        if cert.not_valid_before_utc > now:
            return facts, [f"{label}: not valid before {cert.not_valid_before_utc.isoformat()}"]
    return facts, []


def check_idp_file(name: str, document: bytes, certificate: bytes | None, now: datetime) -> Checked:
    """``document`` as ``metadata/saml-idp/<name>.xml`` with ``certificate`` as its sidecar ``<name>.pem``."""
    facts, problems = certificate_facts(certificate, now, "Signing certificate") if certificate else ([], [])
    if problems:
        return Checked(tuple(problems), facts=tuple(facts))
    with tempfile.TemporaryDirectory(prefix="idp-source-") as scratch:
        folder = Path(scratch)
        xml, pem, index_path = folder / f"{name}.xml", folder / f"{name}.pem", folder / "index.idx"
        xml.write_bytes(document)
        if certificate:
            pem.write_bytes(certificate)
        spec = SourceSpec(name=f"{IDP_FOLDER}/{name}", kind="file", location=str(xml),
                          signing_cert_file=pem if certificate else None, refresh_interval=MIN_REFRESH,
                          max_entities=None, config_file=xml)
        try:
            count, notes, validity = compile_document(spec, xml, now, index_path)
        except (MetadataError, MetadataRefused) as exc:
            return Checked((str(exc),), facts=tuple(facts))
        except OSError as exc:
            return Checked((f"cannot be read: {exc.strerror or exc}",), facts=tuple(facts))
        try:
            index = IdpIndex.open(index_path) if count else IdpIndex.empty()
        except (OSError, CorruptIndex) as exc:
            return Checked((f"cannot be compiled: {exc}",), facts=tuple(facts))
        rows = tuple(EntityRow(e.entity_id, e.display_name("en")) for e in index.names_page(0, PREVIEW_ENTITIES))
        ids = frozenset(index.entity_ids())
    if validity.valid_until is not None:
        facts.append(("validUntil", validity.valid_until.isoformat()))
    facts.append(("Signature", "checked against the certificate given" if certificate else
                  "not checked: no certificate given (you vouch for this file)"))
    found = [] if count else ["the document holds no usable SAML 2.0 identity provider"]
    return Checked(tuple(found), tuple(notes), rows, count, tuple(facts), ids)


def federation_toml(name: str, url: str, refresh_interval: int | None) -> bytes:
    """The federation's source file as written: the URL, the pinned certificate's path, the interval."""
    lines = [f"url = {json.dumps(url)}",  # a JSON string is a TOML basic string
             f"signing_cert_file = {json.dumps((CERT_FOLDER / f'{name}.pem').as_posix())}"]
    if refresh_interval is not None:
        lines.append(f"refresh_interval = {int(refresh_interval)}")
    return ("\n".join(lines) + "\n").encode()


def check_federation(name: str, toml: bytes, certificate: bytes, now: datetime) -> Checked:
    """``toml`` as ``metadata/federations/<name>.toml``, ``certificate`` at ``certs/federations/<name>.pem``."""
    facts, problems = certificate_facts(certificate, now, "Pinned signing certificate")
    with tempfile.TemporaryDirectory(prefix="federation-source-") as scratch:
        instance = Path(scratch)
        (instance / "metadata" / FEDERATION_FOLDER).mkdir(parents=True)
        (instance / "metadata" / FEDERATION_FOLDER / f"{name}.toml").write_bytes(toml)
        (instance / CERT_FOLDER).mkdir(parents=True)
        (instance / CERT_FOLDER / f"{name}.pem").write_bytes(certificate)
        specs, refused = load_sources(instance / "metadata", instance)
    problems += refused
    for spec in specs:
        facts += [("URL", spec.location), ("Refresh interval", f"{spec.refresh_interval} seconds (or the feed's "
                                                                 "cacheDuration, when shorter)")]
    notes = ["the feed is fetched and its signature checked once applied; its identity providers show then"]
    return Checked(tuple(problems), tuple(notes), facts=tuple(facts)) if specs or problems else \
        Checked(("the source file does not load",), facts=tuple(facts))

