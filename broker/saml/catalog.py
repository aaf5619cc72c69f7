"""The registered SAML service providers as the SAML IdP adapter and the registry both see them.

The registry builds an ``SpCatalog`` from metadata files; the downstream SAML IdP reads it. Keeping the
type here, on the shared pysaml2 edge, lets both depend on it without depending on each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.core.model import DownstreamParty, Protocol


@dataclass(frozen=True)
class SamlSp:
    entity_id: str
    display_name: str
    requested_claims: frozenset[str]
    required_claims: frozenset[str]
    attribute_name_format: str
    authn_requests_signed: bool
    acs_post_urls: tuple[str, ...]
    source: Path

    def party(self) -> DownstreamParty:
        return DownstreamParty(self.entity_id, Protocol.SAML, self.display_name, self.requested_claims,
                               required_claims=self.required_claims)


@dataclass(frozen=True)
class SpCatalog:
    sps: dict[str, SamlSp]
    metadata: Any  # pysaml2 MetadataStore: for the SAML IdP adapter only
    problems: tuple[str, ...]
