"""Downstream SAML service providers, registered by dropping their metadata XML into
``metadata/saml-sp/``.

Each file is loaded on its own, with the operator's settings beside it (``<stem>.toml``,
``broker.registry.sp_settings``): one broken file, or one whose settings do not validate, is reported and
skipped, the others stay registered. A file whose settings say ``disabled = true`` (``broker sp disable``) is not
read at all: the app is not served, and that is no problem to report.
What the core needs becomes a frozen ``SamlSp``; the pysaml2 metadata store itself is handed only to
the SAML IdP adapter, which needs it for endpoints and signing certificates (SAML 2.0 Metadata §2.4.4).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError
from defusedxml.ElementTree import parse as parse_without_dtd
from saml2.config import Config
from saml2.mdstore import MetadataStore
from saml2.s_utils import UnknownSystemEntity, UnsupportedBinding

from broker.core.claims import NAMEFORMAT_BASIC, NAMEFORMAT_URI
from broker.registry.sp_display import sp_display
from broker.registry.sp_settings import SpSettings, SpSettingsError, read_sp_settings
from broker.saml.attributes import claims_named, converters
from broker.saml.catalog import SamlSp, SpCatalog

log = logging.getLogger(__name__)
SP_FOLDER = "saml-sp"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"


def _describe(mds: Any, entity_id: str, source: Path, settings: SpSettings) -> SamlSp:
    """The app as the broker serves it: its metadata (SAML Metadata §2.4.4 SPSSODescriptor, §2.4.4.1
    RequestedAttribute) with the operator's settings applied. ``ValueError`` when the settings contradict the
    metadata (a ``required`` claim the app does not ask for)."""
    descriptor = mds[entity_id]["spsso_descriptor"][0]
    requirement = mds.attribute_requirement(entity_id) or {"required": [], "optional": []}
    required = [(a["name"], a.get("friendly_name")) for a in requirement.get("required", [])]
    optional = [(a["name"], a.get("friendly_name")) for a in requirement.get("optional", [])]
    formats = {a.get("name_format") for a in requirement.get("required", []) + requirement.get("optional", [])}
    try:
        acs = mds.assertion_consumer_service(entity_id, BINDING_POST) or []
    except UnsupportedBinding:  # pysaml2's answer when the SP has no endpoint with that binding
        acs = []
    requested = settings.receive if settings.receive is not None else claims_named(required + optional)
    needed = settings.required if settings.required is not None else claims_named(required) & requested
    if not needed <= requested:
        raise ValueError(f"required names claims the app does not receive: {sorted(needed - requested)}")
    display = sp_display(mds[entity_id], entity_id, source.stem)
    return SamlSp(
        entity_id=entity_id,
        display_name=settings.display_name or display.name,
        requested_claims=requested,
        required_claims=needed,
        attribute_name_format=NAMEFORMAT_BASIC if formats == {NAMEFORMAT_BASIC} else NAMEFORMAT_URI,
        authn_requests_signed=str(descriptor.get("authn_requests_signed", "false")).lower() == "true",
        acs_post_urls=tuple(str(e["location"]) for e in acs),
        source=source,
        logo_uri=settings.logo_uri or display.logo_uri,
        policy_uri=settings.policy_uri or display.policy_uri,
        allowed_upstreams=settings.allowed_upstreams,
        default_upstream=settings.default_upstream,
        required_acr=settings.required_acr,
        operator_claims=settings.receive is not None,
    )


def new_metadata_store() -> Any:
    config = Config()
    config.attribute_converters = converters()
    return MetadataStore(config.attribute_converters, config)


def _refuse_doctype(path: Path) -> None:
    """Metadata never needs a DTD: refuse any DOCTYPE (entity expansion, external DTDs) before pysaml2 parses."""
    try:
        parse_without_dtd(str(path), forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ValueError(f"carries a DOCTYPE (DTD or entity declarations): {type(exc).__name__}") from exc
    except ParseError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from exc


def load_sp_catalog(metadata_dir: Path) -> SpCatalog:
    mds = new_metadata_store()
    sps: dict[str, SamlSp] = {}
    problems: list[str] = []
    for path in sorted((metadata_dir / SP_FOLDER).glob("*.xml")):
        before, problems_before = set(mds.keys()), len(problems)
        registered = False
        from_file: dict[str, SamlSp] = {}
        try:
            settings = read_sp_settings(path)
            if settings.disabled:  # the operator's switch: not served, not even parsed
                continue
            _refuse_doctype(path)
            mds.load("local", str(path))
            found = mds.metadata[str(path)]
            for entity_id in found.keys():  # noqa: SIM118 - pysaml2 metadata is not iterable
                if entity_id in before:
                    first = sps[entity_id].source.name if entity_id in sps else "an earlier file"
                    problems.append(f"{path.name}: {entity_id} is already registered by {first}; skipped")
                    continue
                if "spsso_descriptor" not in found[entity_id]:
                    continue
                sp = _describe(mds, entity_id, path, settings)
                if not sp.acs_post_urls:
                    problems.append(f"{path.name}: {entity_id} has no HTTP-POST AssertionConsumerService; skipped")
                    continue
                from_file[entity_id] = sp
            if not from_file and len(problems) == problems_before:
                problems.append(f"{path.name}: describes no SAML service provider; skipped")
            sps.update(from_file)  # all of the file's apps or none of them
            registered = bool(from_file)
        except SpSettingsError as exc:
            problems.append(f"{path.name}: its settings are not valid, so the app is not served: {exc}")
        except (UnknownSystemEntity, ValueError, KeyError, TypeError, OSError, SyntaxError) as exc:
            problems.append(f"{path.name}: not usable SAML metadata ({type(exc).__name__}: {exc})")
        except Exception as exc:
            problems.append(f"{path.name}: not usable SAML metadata ({type(exc).__name__})")
        if not registered:
            # Keep the store the IdP adapter uses in step with ``sps``: a skipped file contributes nothing.
            mds.metadata.pop(str(path), None)
    for orphan in sorted((metadata_dir / SP_FOLDER).glob("*.toml")):
        if not orphan.with_suffix(".xml").is_file():
            problems.append(f"{orphan.name}: settings without metadata ({orphan.stem}.xml); not used")
    for problem in problems:
        log.warning("metadata skipped: %s", problem)
    return SpCatalog(sps=sps, metadata=mds, problems=tuple(problems))
