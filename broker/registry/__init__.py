"""Every party the broker knows: downstream SAML SPs and upstream providers from ``metadata/``."""

from broker.registry.registry import FileRegistry, Snapshot
from broker.registry.upstreams import RegistrationError, UpstreamRegistration, parse_registration
from broker.saml.catalog import SamlSp, SpCatalog

__all__ = [
    "FileRegistry", "RegistrationError", "SamlSp", "Snapshot", "SpCatalog", "UpstreamRegistration",
    "parse_registration",
]
