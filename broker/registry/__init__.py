"""Every party the broker knows: downstream SAML SPs and upstream providers from ``metadata/``."""

from broker.registry.registry import FileRegistry, Snapshot
from broker.registry.saml_sps import SamlSp, SpCatalog
from broker.registry.upstreams import RegistrationError, UpstreamRegistration, parse_registration

__all__ = [
    "FileRegistry", "RegistrationError", "SamlSp", "Snapshot", "SpCatalog", "UpstreamRegistration",
    "parse_registration",
]
