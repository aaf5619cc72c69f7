"""Identity providers out of a SAML metadata document (SAML 2.0 Metadata, OASIS saml-metadata-2.0-os).

:func:`parse_document` parses untrusted bytes with a hardened lxml parser and refuses any DOCTYPE (so no
entity expansion, "billion laughs", and no external DTD). :func:`extract_idps` turns every
``md:EntityDescriptor`` with an ``md:IDPSSODescriptor`` whose ``protocolSupportEnumeration`` lists SAML 2.0
(§2.4.1, §2.4.3) into an :class:`IdpEntity`. One broken entity is skipped and named in a problem line; the
rest of the aggregate still loads. Signature and validity of the document are checked separately
(:mod:`broker.registry.metadata_signature`) before the entities are trusted.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from lxml import etree  # type: ignore[import-untyped]

from broker.registry.idp_entity import IdpEntity
from broker.registry.metadata_signature import parse_instant
from broker.saml.xmlsec_backend import DS_NS, DenyResolver, ExternalResourceRefused

__all__ = ["MD_NS", "SAML2_PROTOCOL", "MetadataError", "duplicate_problems", "extract_idps", "iter_idps",
           "parse_document"]

MD_NS: Final = "urn:oasis:names:tc:SAML:2.0:metadata"
MDUI_NS: Final = "urn:oasis:names:tc:SAML:metadata:ui"
MDATTR_NS: Final = "urn:oasis:names:tc:SAML:metadata:attribute"
MDRPI_NS: Final = "urn:oasis:names:tc:SAML:metadata:rpi"
SAML_NS: Final = "urn:oasis:names:tc:SAML:2.0:assertion"
SAML2_PROTOCOL: Final = "urn:oasis:names:tc:SAML:2.0:protocol"
_LANG: Final = "{http://www.w3.org/XML/1998/namespace}lang"
_ENTITY: Final = f"{{{MD_NS}}}EntityDescriptor"
_ENTITIES: Final = f"{{{MD_NS}}}EntitiesDescriptor"
_IDP: Final = f"{{{MD_NS}}}IDPSSODescriptor"
_KEY_INFO: Final = f"{{{DS_NS}}}KeyInfo"
_X509_DATA: Final = f"{{{DS_NS}}}X509Data"
_X509_CERT: Final = f"{{{DS_NS}}}X509Certificate"
_MAX_PROBLEMS: Final = 200  # an aggregate broken everywhere reports the first problems only


class MetadataError(ValueError):
    """The document as a whole cannot be used (not XML, DOCTYPE, wrong root, too many entities)."""


def _parser() -> Any:
    # A new parser per call: lxml parsers must not be shared between threads, and parsing is rare.
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=False,  # libxml2's default limits (10 MB text node, depth 256) suffice for real aggregates
        collect_ids=False, remove_comments=False,
    )
    parser.resolvers.add(DenyResolver())
    return parser


def parse_document(data: bytes | Path) -> Any:
    """Parse a metadata document (bytes, or a file: read in small pieces, never whole into memory);
    refuse a DOCTYPE (XML Signature and SAML never need one)."""
    # Checked before parsing too, so a declared entity is never even expanded into the tree.
    if isinstance(data, Path):
        with open(data, "rb") as fh:
            head = fh.read(4096).lstrip()
    else:
        head = data[:4096].lstrip()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise MetadataError("the document carries a DOCTYPE (DTD or entity declarations); refused")
    try:
        if isinstance(data, Path):
            with open(data, "rb") as fh:  # a file object: the resolver refuses every URL, this file's included
                root = etree.parse(fh, _parser()).getroot()
        else:
            root = etree.fromstring(data, _parser())
    except ExternalResourceRefused as exc:
        raise MetadataError(f"the document refers to an external resource ({exc}); refused") from exc
    except etree.XMLSyntaxError as exc:
        raise MetadataError(f"not well-formed XML: {exc}") from exc
    except OSError as exc:  # lxml reports an unreadable file this way
        raise MetadataError(f"cannot read the document: {exc}") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise MetadataError("the document carries a DOCTYPE (DTD or entity declarations); refused")
    if root.tag not in (_ENTITIES, _ENTITY):
        raise MetadataError(f"the root element is {root.tag}, not md:EntitiesDescriptor or md:EntityDescriptor")
    return root


class _Skip(Exception):
    """This entity is broken; the message says why."""


def iter_idps(root: Any, source: str, problems: list[str], *, now: datetime | None = None,
              max_entities: int | None = None) -> Iterator[IdpEntity]:
    """Every usable SAML 2.0 IdP in the document, one at a time (so a caller can store each and let it go);
    a problem line for every entity skipped is appended to ``problems``.

    Skipped: no entityID, no SingleSignOnService, a certificate that is not base64 DER, an entity whose own
    ``validUntil`` has passed (§2.3.2, when ``now`` is given). Duplicate entityIDs are the caller's to drop
    (:func:`duplicate_problems`): which copy is genuine cannot be told, so neither is trusted.
    """
    found = 0
    for index, element in enumerate(_entities(root, now, problems, source), start=1):
        entity_id = element.get("entityID") or ""
        idp = next((d for d in element.iterchildren(_IDP) if SAML2_PROTOCOL in
                    (d.get("protocolSupportEnumeration") or "").split()), None)
        if idp is None:
            continue  # an SP, or an IdP of another protocol: not for this directory, not a problem
        try:
            if not entity_id.strip():
                raise _Skip("no entityID")
            if now is not None and (until := element.get("validUntil")):
                try:
                    expired = parse_instant(until) <= now
                except ValueError as exc:
                    raise _Skip(f"validUntil {until!r} is not a date-time") from exc
                if expired:
                    raise _Skip(f"validUntil {until} has passed")
            entity = _idp_entity(element, idp, entity_id, source)
        except _Skip as exc:
            if len(problems) < _MAX_PROBLEMS:
                problems.append(f"{source}: entity #{index} {entity_id[:200]!r} skipped: {exc}")
            continue
        found += 1
        if max_entities is not None and found > max_entities:
            raise MetadataError(f"more than max_entities = {max_entities} identity providers; refused")
        yield entity


def duplicate_problems(source: str, counts: Mapping[str, int]) -> list[str]:
    return [f"{source}: entityID {eid[:200]!r} occurs {n} times; all copies skipped"
            for eid, n in sorted(counts.items()) if n > 1]


def extract_idps(root: Any, source: str, *, now: datetime | None = None,
                 max_entities: int | None = None) -> tuple[list[IdpEntity], list[str]]:
    """:func:`iter_idps` as a list, every copy of a duplicate entityID dropped and reported."""
    problems: list[str] = []
    found = list(iter_idps(root, source, problems, now=now, max_entities=max_entities))
    counts = Counter(e.entity_id for e in found)
    return [e for e in found if counts[e.entity_id] == 1], [*problems, *duplicate_problems(source, counts)]


def _entities(group: Any, now: datetime | None, problems: list[str], source: str) -> Iterator[Any]:
    """The EntityDescriptors of the document, nested EntitiesDescriptors included (§2.3.1) unless their own
    validUntil has passed (§2.3.2); depth is bounded by the parser's limit (256)."""
    if group.tag == _ENTITY:
        yield group
        return
    for child in group.iterchildren(_ENTITY, _ENTITIES):
        if child.tag == _ENTITIES and now is not None and (until := child.get("validUntil")):
            try:
                expired = parse_instant(until) <= now
            except ValueError:
                expired = True
            if expired:
                problems.append(f"{source}: nested EntitiesDescriptor {child.get('Name')!r}: validUntil {until!r} "
                                "has passed or is not a date-time; its entities are skipped")
                continue
        yield from _entities(child, now, problems, source)


def _idp_entity(element: Any, idp: Any, entity_id: str, source: str) -> IdpEntity:
    # Endpoints (§2.2.2) the browser is sent to with a request: https only (http to this machine only).
    sso = tuple((binding, location) for s in idp.iterchildren(f"{{{MD_NS}}}SingleSignOnService")
                if (binding := s.get("Binding")) and _https(location := s.get("Location")))
    if not sso:
        raise _Skip("no SingleSignOnService with a Binding and an https Location")
    slo = tuple((binding, location, response if _https(response := s.get("ResponseLocation")) else None)
                for s in idp.iterchildren(f"{{{MD_NS}}}SingleLogoutService")
                if (binding := s.get("Binding")) and _https(location := s.get("Location")))
    signing: list[str] = []
    encryption: list[str] = []
    for descriptor in idp.iterchildren(f"{{{MD_NS}}}KeyDescriptor"):
        use = descriptor.get("use")
        key_info = _child(descriptor, _KEY_INFO)
        for cert in () if key_info is None else _grandchildren(key_info, _X509_DATA, _X509_CERT):
            der = _certificate(cert.text)
            if use in (None, "signing"):
                signing.append(der)
            if use in (None, "encryption"):
                encryption.append(der)
    ui = next(_grandchildren(idp, f"{{{MD_NS}}}Extensions", f"{{{MDUI_NS}}}UIInfo"), None)
    names = _texts(ui, "DisplayName") or _texts(
        _child(element, f"{{{MD_NS}}}Organization"), "OrganizationDisplayName", MD_NS)
    extensions = _child(element, f"{{{MD_NS}}}Extensions")
    info = _texts(ui, "InformationURL")
    return IdpEntity(
        entity_id=entity_id,
        source=source,
        display_names=names,
        descriptions=_texts(ui, "Description"),
        logos=_logos(ui),
        keywords=tuple((lang, w.replace("+", " ")) for lang, text in _texts(ui, "Keywords") for w in text.split()),
        information_url=next((url for _, url in info if url.startswith("https://")), None),
        sso_services=sso,
        slo_services=slo,
        signing_certs=tuple(dict.fromkeys(signing)),
        encryption_certs=tuple(dict.fromkeys(encryption)),
        want_authn_requests_signed=idp.get("WantAuthnRequestsSigned") in ("true", "1"),
        name_id_formats=tuple(t for f in idp.iterchildren(f"{{{MD_NS}}}NameIDFormat") if (t := (f.text or "").strip())),
        entity_attributes=_entity_attributes(extensions),
        registration_authority=_registration_authority(extensions),
    )


_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def _https(url: str | None) -> bool:
    """An https endpoint; plain http only to this machine (127.0.0.1, ::1, localhost: test and demo IdPs),
    never across a network, where the AuthnRequest and RelayState would travel in the clear."""
    if url is None:
        return False
    if url.startswith("https://"):
        return len(url) > len("https://")
    return url.startswith("http://") and urlsplit(url).hostname in _LOOPBACK


def _certificate(text: str | None) -> str:
    compact = "".join((text or "").split())
    try:
        der = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _Skip("a ds:X509Certificate is not valid base64") from exc
    if len(der) < 64 or der[0] != 0x30:  # an X.509 certificate is a DER SEQUENCE
        raise _Skip("a ds:X509Certificate does not hold a DER certificate")
    return compact


def _child(parent: Any, tag: str) -> Any:
    """The first child ``tag`` or None (faster than ElementPath for the many small lookups here)."""
    for child in parent.iterchildren(tag):
        return child
    return None


def _grandchildren(parent: Any, tag: str, sub: str) -> Iterator[Any]:
    for child in parent.iterchildren(tag):
        yield from child.iterchildren(sub)


def _texts(parent: Any, local: str, namespace: str = MDUI_NS) -> tuple[tuple[str, str], ...]:
    if parent is None:
        return ()
    return tuple((e.get(_LANG) or "", text) for e in parent.iterchildren(f"{{{namespace}}}{local}")
                 if (text := " ".join((e.text or "").split())))


def _logos(ui: Any) -> tuple[tuple[str, int, int, str | None], ...]:
    """mdui:Logo (MDUI §2.1.6); only https and ``data:image/`` URLs, anything else could leak or mix content."""
    if ui is None:
        return ()
    logos = []
    for logo in ui.iterchildren(f"{{{MDUI_NS}}}Logo"):
        url = (logo.text or "").strip()
        if url.startswith(("https://", "data:image/")):
            logos.append((url, _int(logo.get("width")), _int(logo.get("height")), logo.get(_LANG)))
    return tuple(logos)


def _int(value: str | None) -> int:
    try:
        return max(0, min(int(value or 0), 10_000))
    except ValueError:
        return 0


def _entity_attributes(extensions: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """mdattr:EntityAttributes (SAML V2.0 Metadata Extension for Entity Attributes §2.3)."""
    if extensions is None:
        return ()
    found = []
    for attribute in _grandchildren(extensions, f"{{{MDATTR_NS}}}EntityAttributes", f"{{{SAML_NS}}}Attribute"):
        values = tuple((v.text or "").strip() for v in attribute.iterchildren(f"{{{SAML_NS}}}AttributeValue"))
        if name := attribute.get("Name"):
            found.append((name, values))
    return tuple(found)


def _registration_authority(extensions: Any) -> str | None:
    """mdrpi:RegistrationInfo/@registrationAuthority (SAML V2.0 Metadata Extensions for Registration and
    Publication Information §2.1)."""
    info = None if extensions is None else _child(extensions, f"{{{MDRPI_NS}}}RegistrationInfo")
    return None if info is None else info.get("registrationAuthority") or None
