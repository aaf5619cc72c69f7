"""A federation whose upstream is a real pysaml2 SAML IdP (``tests.peers.saml_idp.TestIdp``), for the bridges
SAML app -> broker -> SAML IdP and OIDC client -> broker -> SAML IdP.

The IdP runs on "localhost" (another site than the broker on 127.0.0.1), so its HTTP-POST answers reach the
broker's ACS as cross-site POSTs, as they do in production. Its metadata lies in ``metadata/saml-idp/`` and it
is registered as the upstream "city" (``metadata/upstreams/city.json``, protocol "saml").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from flask import Flask

from broker.keys.keyring import generate_keyring
from tests.databases import database_for
from tests.flows.federation import ExtraUpstream, Federation, running_federation
from tests.peers.saml_idp import IdpUser, TestIdp
from tests.peers.servers import WsgiApp

EIDAS = "http://eidas.europa.eu/attributes/naturalperson/"
CITIZEN = IdpUser(
    name_id="city-person-0042",
    attributes={"mail": ["aino@city.example"], EIDAS + "CurrentGivenName": ["Aino"],
                EIDAS + "CurrentFamilyName": ["Kallio"], EIDAS + "DateOfBirth": ["1990-05-17"],
                EIDAS + "PersonIdentifier": ["FI/FI/010190-123A"]},
)


@dataclass
class CityIdp:
    """Builds the IdP for ``running_federation(extra_upstreams=...)`` once its address is known."""

    folder: Path
    user: IdpUser = CITIZEN
    options: dict[str, str] = field(default_factory=dict)
    #: another metadata file for ``metadata/saml-idp/`` (e.g. a federation's aggregate), written beside the IdP's
    more_metadata: bytes | None = None
    idp: TestIdp | None = None
    app: Flask | None = None

    def build(self, base_url: str, redirect_uri: str, instance: Path) -> tuple[WsgiApp, dict[str, Any]]:
        keys = generate_keyring(self.folder / "city-idp", "test city idp", bits=2048)
        self.idp = TestIdp(base_url, str(keys.key_file), str(keys.cert_file))
        (instance / "metadata" / "saml-idp").mkdir(parents=True, exist_ok=True)
        (instance / "metadata" / "saml-idp" / "city.xml").write_text(self.idp.metadata())
        if self.more_metadata is not None:
            (instance / "metadata" / "saml-idp" / "federation.xml").write_bytes(self.more_metadata)
        self.app = self.idp.app(self.user)
        return self.app, {"protocol": "saml", "entity_id": base_url, "display_name": "City ID",
                          "options": self.options}

    @property
    def seen(self) -> list[Any]:
        assert self.app is not None
        return list(self.app.extensions["test_idp"].seen)


@contextmanager
def saml_federation(tmp_path: Path, key_folder: Path, backend: str = "sqlite", *, user: IdpUser = CITIZEN,
                    options: dict[str, str] | None = None,
                    more_metadata: bytes | None = None) -> Iterator[tuple[Federation, CityIdp]]:
    city = CityIdp(tmp_path / "idp-keys", user, dict({"email_verified": "true"} if options is None else options),
                   more_metadata)
    database = database_for(backend, tmp_path)
    try:
        upstream = ExtraUpstream("city", city.build, host="localhost")
        with running_federation(tmp_path / "instance", key_folder, next(database),
                                extra_upstreams=(upstream,)) as fed:
            assert city.idp is not None
            city.idp.connect(requests.get(fed.url + "/saml2/sp/metadata", timeout=10).text)
            yield fed, city
    finally:
        for _ in database:
            pass

