"""The broker as a SAML service provider toward upstream IdPs (pysaml2), request side and metadata.

AuthnRequests (SAML 2.0 Core §3.4.1) are signed with RSA-SHA256: over the query for HTTP-Redirect (Bindings
§3.4.4.1), enveloped in the message for HTTP-POST (Bindings §3.5.4). Each names the broker's HTTP-POST ACS,
asks for a persistent NameID (Core §8.3.7), and carries the downstream's wishes: ForceAuthn, IsPassive and the
required assurance as RequestedAuthnContext with its Comparison (Core §3.3.2.2.1).

Answers are verified by ``broker.upstream.saml_response`` (``SamlSp.expectations`` says what to expect) and
turned into an ``UpstreamIdentity`` by ``broker.upstream.saml_identity``.
"""

from __future__ import annotations

import base64
import secrets
import threading
from datetime import datetime
from typing import Any

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor, sign_entity_descriptor
from saml2.saml import NAMEID_FORMAT_PERSISTENT, AuthnContextClassRef
from saml2.sigver import security_context
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from broker.core.model import LoginRequest
from broker.saml.xmlsec_backend import install_in_process_backend
from broker.upstream.saml_model import ResponseExpectations
from broker.upstream.saml_settings import BINDING_POST, Outgoing, SamlPending, SpSettings, UpstreamIdp

REQUEST_ID_BYTES = 20


def _config(settings: SpSettings) -> Any:
    conf = SPConfig()
    conf.load({
        "entityid": settings.entity_id,
        "key_file": str(settings.key_file),
        "cert_file": str(settings.cert_file),
        "additional_cert_files": [str(path) for path in settings.extra_cert_files] or None,
        "encryption_keypairs": [{"key_file": str(key), "cert_file": str(settings.encryption_cert_file)}
                                for key in settings.decryption_key_files[:1]],
        "xmlsec_binary": settings.xmlsec_binary,
        "accepted_time_diff": int(settings.clock_skew.total_seconds()),
        "valid_for": max(1, int(settings.metadata_valid_for.total_seconds() // 3600)),
        "metadata": {},
        "service": {"sp": {
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
            "endpoints": {
                "assertion_consumer_service": [(settings.acs_url, BINDING_HTTP_POST)],
                "single_logout_service": [(settings.slo_redirect_url, BINDING_HTTP_REDIRECT),
                                          (settings.slo_post_url, BINDING_HTTP_POST)],
            },
            "authn_requests_signed": True,
            "want_assertions_signed": True,
            "want_response_signed": False,
            "name_id_format": [NAMEID_FORMAT_PERSISTENT],
            "allow_unsolicited": False,
        }},
    })
    return conf


class SamlSp:
    """One pysaml2 ``Saml2Client`` for the broker's SP role, built on first use and shared by threads."""

    def __init__(self, settings: SpSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._client: Any = None
        #: read once: the key files change only with a restart (``broker keys rotate``), never per Response
        self._decryption_keys = tuple(path.read_bytes() for path in settings.decryption_key_files)

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    client = Saml2Client(config=_config(self.settings))
                    install_in_process_backend(client, allow_sha1=False)
                    self._client = client
        return self._client

    def metadata_xml(self) -> str:
        """The SP's own metadata, signed with its key (SAML 2.0 Metadata §2.4.4): the ACS, the SLO endpoints,
        a signing and an encryption KeyDescriptor, AuthnRequestsSigned and WantAssertionsSigned."""
        client = self.client
        descriptor = entity_descriptor(client.config)
        secc = security_context(client.config)
        install_in_process_backend(secc, allow_sha1=False)
        _, signed = sign_entity_descriptor(descriptor, None, secc, SIG_RSA_SHA256, DIGEST_SHA256)
        return str(signed)

    def authn_request(self, idp: UpstreamIdp, login: LoginRequest | None, now: datetime,
                      reauthenticate: bool = False) -> tuple[Outgoing, SamlPending]:
        """A signed AuthnRequest to ``idp`` for ``login`` (None: the broker's own sign-in, e.g. linking).
        ``reauthenticate`` (a link proof) sets ForceAuthn whatever the login asked (SAML Core §3.4.1)."""
        binding, destination = idp.sso_endpoint()
        request_id = "_" + secrets.token_hex(REQUEST_ID_BYTES)
        relay_state = secrets.token_urlsafe(32)
        extra: dict[str, Any] = {}
        force_authn = reauthenticate or (login is not None and login.force_authn)
        if force_authn:
            extra["force_authn"] = "true"
        if login is not None:
            if login.passive:
                extra["is_passive"] = "true"
            if login.acr_values:
                extra["requested_authn_context"] = samlp.RequestedAuthnContext(
                    authn_context_class_ref=[AuthnContextClassRef(text=acr) for acr in login.acr_values],
                    comparison=login.acr_comparison.value,
                )
        client = self.client
        post = binding == BINDING_POST
        _, message = client.create_authn_request(
            destination, binding=BINDING_HTTP_POST, service_url_binding=BINDING_HTTP_POST, message_id=request_id,
            nameid_format=NAMEID_FORMAT_PERSISTENT, allow_create="true", sign=post,
            sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256, **extra,
        )
        xml = str(message)
        if post:
            encoded = base64.b64encode(xml.encode()).decode("ascii")
            outgoing = Outgoing(destination, (("SAMLRequest", encoded), ("RelayState", relay_state)))
        else:
            info = client.apply_binding(BINDING_HTTP_REDIRECT, xml, destination, relay_state=relay_state,
                                        sign=True, sigalg=SIG_RSA_SHA256)
            outgoing = Outgoing(dict(info["headers"])["Location"])
        return outgoing, SamlPending(idp.name, idp.entity_id, request_id, relay_state, now, force_authn)

    def expectations(self, idp: UpstreamIdp, pending: SamlPending | None) -> ResponseExpectations:
        """What a Response from ``idp`` must be (``saml_response.verify_response``): to this SP's ACS, signed by
        a certificate from ``idp``'s metadata, in response to ``pending`` (None: unsolicited)."""
        return ResponseExpectations(
            sp_entity_id=self.settings.entity_id,
            acs_urls=frozenset({self.settings.acs_url}),
            idp_entity_id=idp.entity_id,
            signing_certs=idp.signing_certs,
            in_response_to=pending.request_id if pending is not None else None,
            allow_unsolicited=idp.allow_unsolicited and pending is None,
            clock_skew=self.settings.clock_skew,
            want_assertions_signed=idp.want_assertions_signed,
            decryption_keys=self._decryption_keys,
            authenticated_since=pending.created_at if pending is not None and pending.force_authn else None,
        )
