"""pysaml2 service providers as test peers.

They use pysaml2's stock crypto backend (the ``xmlsec1`` program), so every flow test also proves
that the broker's in-process signatures verify with the reference implementation.
"""

from __future__ import annotations

import base64
import functools
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_PERSISTENT
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from broker.saml.attributes import converters


@dataclass(frozen=True)
class SpKeys:
    key_file: Path
    cert_file: Path


def sp_config(entity_id: str, keys: SpKeys, idp_metadata: str | None, *, sign_requests: bool = True,
              requested: tuple[str, ...] = ("mail", "givenName", "sn"), slo: bool = False) -> Any:
    xmlsec = shutil.which("xmlsec1")
    assert xmlsec, "the xmlsec1 program is needed for the cross-check (apt-get install xmlsec1)"
    conf = SPConfig()
    conf.load({
        "entityid": entity_id,
        "key_file": str(keys.key_file),
        "cert_file": str(keys.cert_file),
        "xmlsec_binary": xmlsec,
        "metadata": {"inline": [idp_metadata]} if idp_metadata else {},
        "service": {"sp": {
            # pysaml2 reads these only inside the role section; at the top level they are ignored
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
            "endpoints": {"assertion_consumer_service": [(entity_id + "/acs", BINDING_HTTP_POST)],
                          # SAML Single Logout only when asked for (``slo``): SingleLogoutService in the metadata
                          **({"single_logout_service": [(entity_id + "/slo/redirect", BINDING_HTTP_REDIRECT),
                                                        (entity_id + "/slo/post", BINDING_HTTP_POST)]}
                             if slo else {})},
            "authn_requests_signed": sign_requests,
            "want_response_signed": True,
            "want_assertions_signed": True,
            "allow_unsolicited": False,
            "name_id_format": [NAMEID_FORMAT_PERSISTENT],
            "required_attributes": list(requested),
        }},
    })
    conf.attribute_converters = converters()
    return conf


def _stamp(keys: SpKeys) -> tuple[int, int]:
    """What tells a rewritten key file from the one a cached metadata document was made of."""
    return keys.key_file.stat().st_mtime_ns, keys.cert_file.stat().st_mtime_ns


@functools.lru_cache(maxsize=128)
def _metadata(entity_id: str, keys: SpKeys, _stamp: tuple[int, int], sign_requests: bool, slo: bool,
              requested: tuple[str, ...]) -> str:
    """An SP's metadata (valid 24 hours), made once per test process: pysaml2 starts the xmlsec1 program to
    check its version for every configuration, 0.2 s a document."""
    config = sp_config(entity_id, keys, None, sign_requests=sign_requests, slo=slo, requested=requested)
    return bytes(create_metadata_string(None, config=config, valid=24)).decode()


class TestSp:
    """One registered SP: makes AuthnRequests and checks the broker's Responses as a real SP would."""

    __test__ = False

    def __init__(self, entity_id: str, keys: SpKeys, *, sign_requests: bool = True, slo: bool = False,
                 requested: tuple[str, ...] = ("mail", "givenName", "sn")) -> None:
        """``requested``: the RequestedAttributes of its metadata (none: no AttributeConsumingService at all)."""
        self.entity_id, self.keys, self.sign_requests, self.slo = entity_id, keys, sign_requests, slo
        self.requested = requested
        self.acs_url = entity_id + "/acs"
        self._client: Any = None

    def metadata(self) -> str:
        return _metadata(self.entity_id, self.keys, _stamp(self.keys), self.sign_requests, self.slo, self.requested)

    def connect(self, idp_metadata: str) -> None:
        self._client = Saml2Client(config=sp_config(self.entity_id, self.keys, idp_metadata,
                                                    sign_requests=self.sign_requests, slo=self.slo,
                                                    requested=self.requested))

    @property
    def client(self) -> Any:
        assert self._client is not None, "connect() first"
        return self._client

    def redirect_request(self, **kwargs: Any) -> tuple[str, str]:
        """(request id, URL of the broker's SSO endpoint carrying a signed Redirect-binding request)."""
        kwargs.setdefault("sigalg", SIG_RSA_SHA256)  # pysaml2 signs Redirect requests with SHA-1 unless told
        request_id, info = self.client.prepare_for_authenticate(binding=BINDING_HTTP_REDIRECT, **kwargs)
        return request_id, dict(info["headers"])["Location"]

    def post_request(self, **kwargs: Any) -> tuple[str, str, dict[str, str]]:
        """(request id, SSO POST URL, form fields) of a signed HTTP-POST binding AuthnRequest."""
        destination = self.client.sso_location(binding=BINDING_HTTP_POST)
        kwargs.setdefault("sign_alg", SIG_RSA_SHA256)
        kwargs.setdefault("digest_alg", DIGEST_SHA256)
        request_id, request = self.client.create_authn_request(destination, binding=BINDING_HTTP_POST,
                                                               sign=self.sign_requests, **kwargs)
        fields = {"SAMLRequest": base64.b64encode(str(request).encode()).decode(), "RelayState": "rs-post"}
        return request_id, destination, fields

    def parse(self, saml_response: str, request_id: str) -> Any:
        return self.client.parse_authn_request_response(saml_response, BINDING_HTTP_POST,
                                                        outstanding={request_id: "/"})
