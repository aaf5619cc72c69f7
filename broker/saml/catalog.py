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
    """One registered SAML app: its metadata, with the operator's settings beside it
    (``broker.registry.sp_settings``) already applied."""

    entity_id: str
    display_name: str
    requested_claims: frozenset[str]
    required_claims: frozenset[str]
    attribute_name_format: str
    authn_requests_signed: bool
    acs_post_urls: tuple[str, ...]
    source: Path
    logo_uri: str | None = None
    policy_uri: str | None = None
    allowed_upstreams: tuple[str, ...] = ()
    default_upstream: str | None = None
    required_acr: str | None = None
    #: the claims came from the operator's ``receive`` setting rather than the metadata's RequestedAttributes
    operator_claims: bool = False

    def party(self) -> DownstreamParty:
        return DownstreamParty(self.entity_id, Protocol.SAML, self.display_name, self.requested_claims,
                               allowed_upstreams=self.allowed_upstreams, required_claims=self.required_claims,
                               default_upstream=self.default_upstream, required_acr=self.required_acr,
                               logo_uri=self.logo_uri, policy_uri=self.policy_uri)


@dataclass(frozen=True)
class SpCatalog:
    sps: dict[str, SamlSp]
    metadata: Any  # pysaml2 MetadataStore: for the SAML IdP adapter only
    problems: tuple[str, ...]
