"""The broker's SAML IdP role as a pysaml2 ``Server``, rebuilt when the SP registry changes.

pysaml2 is configured here and nowhere else. The SSO endpoints, signing key and algorithms are the
broker's; the metadata store comes from the registry; signatures run in-process (``broker.saml``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor, sign_entity_descriptor
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT
from saml2.server import Server
from saml2.sigver import security_context
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from broker.core.claims import NAMEFORMAT_URI
from broker.saml.attributes import converters
from broker.saml.catalog import SpCatalog
from broker.saml.xmlsec_backend import install_in_process_backend


@dataclass(frozen=True)
class SamlIdpSettings:
    entity_id: str
    sso_redirect_url: str
    sso_post_url: str
    key_file: Path
    cert_file: Path
    xmlsec_binary: str | None
    clock_skew: timedelta
    request_max_age: timedelta
    want_authn_requests_signed: bool
    assertion_lifetime: timedelta
    #: legacy SPs whose SHA-1 signatures are accepted; every other SP must use SHA-256 or better
    sha1_allowed_for: frozenset[str]
    pairwise_secret: bytes
    metadata_valid_for: timedelta = timedelta(days=7)
    #: certificates published in the metadata beside ``cert_file`` (the next and the previous signing keys)
    extra_cert_files: tuple[Path, ...] = ()
    #: SingleLogoutService (SAML 2.0 Profiles §4.4); by default next to the SSO endpoints (``.../slo/redirect``)
    slo_redirect_url: str = ""
    slo_post_url: str = ""

    def __post_init__(self) -> None:
        for name, sso_url, leaf in (("slo_redirect_url", self.sso_redirect_url, "/slo/redirect"),
                                    ("slo_post_url", self.sso_post_url, "/slo/post")):
            if not getattr(self, name):
                object.__setattr__(self, name, sso_url.rsplit("/sso/", 1)[0] + leaf)


def _policy(settings: SamlIdpSettings, catalog: SpCatalog) -> dict[str, Any]:
    """Release is decided by ``core.release``; pysaml2 only names and times what it is given."""
    minutes = max(1, int(settings.assertion_lifetime.total_seconds() // 60))
    default = {
        "lifetime": {"minutes": minutes},
        "attribute_restrictions": None,
        "name_form": NAMEFORMAT_URI,
        "fail_on_missing_requirements": False,
    }
    policy: dict[str, Any] = {"default": default}
    for sp in catalog.sps.values():
        if sp.attribute_name_format != NAMEFORMAT_URI:
            policy[sp.entity_id] = {**default, "name_form": sp.attribute_name_format}
    return policy


def _config(settings: SamlIdpSettings, catalog: SpCatalog) -> Any:
    conf = IdPConfig()
    conf.load({
        "entityid": settings.entity_id,
        "key_file": str(settings.key_file),
        "cert_file": str(settings.cert_file),
        "additional_cert_files": [str(path) for path in settings.extra_cert_files] or None,
        "xmlsec_binary": settings.xmlsec_binary,
        "accepted_time_diff": int(settings.clock_skew.total_seconds()),
        "valid_for": max(1, int(settings.metadata_valid_for.total_seconds() // 3600)),
        "service": {"idp": {
            # pysaml2 reads these only inside the role section; at the top level they are ignored
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
            "endpoints": {
                "single_sign_on_service": [
                    (settings.sso_redirect_url, BINDING_HTTP_REDIRECT),
                    (settings.sso_post_url, BINDING_HTTP_POST),
                ],
                "single_logout_service": [
                    (settings.slo_redirect_url, BINDING_HTTP_REDIRECT),
                    (settings.slo_post_url, BINDING_HTTP_POST),
                ],
            },
            "name_id_format": [NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT],
            # Checked per SP by the broker (metadata AuthnRequestsSigned or the global setting).
            "want_authn_requests_signed": False,
            "sign_response": True,
            "sign_assertion": True,
            "policy": _policy(settings, catalog),
        }},
    })
    conf.attribute_converters = converters()
    conf.metadata = catalog.metadata
    return conf


class _IdpServer(Server):  # type: ignore[misc]
    """pysaml2's IdP without the queries the broker does not serve (SAML 2.0 Core §3.3 AssertionIDRequest,
    §3.3.2.2 AuthnQuery; its metadata names no such endpoint). pysaml2 keeps every Assertion it issues in an
    in-memory store for them, about 12 KiB each, until the ``Server`` is rebuilt: a process that answers a
    morning's logins would grow by hundreds of megabytes for nothing."""

    def support_AssertionIDRequest(self) -> bool:
        return False

    def support_AuthnQuery(self) -> bool:
        return False


class IdpServers:
    """One pysaml2 ``Server`` per registry snapshot, built on first use and shared by threads."""

    def __init__(self, settings: SamlIdpSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._built: tuple[SpCatalog, Any] | None = None

    def server(self, catalog: SpCatalog) -> Any:
        built = self._built
        if built is not None and built[0] is catalog:
            return built[1]
        with self._lock:
            if self._built is None or self._built[0] is not catalog:
                server = _IdpServer(config=_config(self.settings, catalog))
                # The verifier admits SHA-1 only when some SP is allowed it; which SP signed is checked after
                # parsing (saml_requests._check_signature), since pysaml2 verifies before it knows the SP.
                install_in_process_backend(server, allow_sha1=bool(self.settings.sha1_allowed_for))
                self._built = (catalog, server)
            return self._built[1]

    def metadata_xml(self, catalog: SpCatalog) -> str:
        """The IdP's own metadata, signed with its key (SAML 2.0 Metadata §3.1)."""
        server = self.server(catalog)
        descriptor = entity_descriptor(server.config)
        secc = security_context(server.config)
        install_in_process_backend(secc, allow_sha1=False)
        _, signed = sign_entity_descriptor(descriptor, None, secc, SIG_RSA_SHA256, DIGEST_SHA256)
        return str(signed)
