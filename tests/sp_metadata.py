"""Real SAML SP metadata for the registry and CLI tests, written by pysaml2 from an SP configuration
(``tests.flows.saml_peers.sp_config``), never by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from saml2 import BINDING_HTTP_ARTIFACT
from saml2.metadata import create_metadata_string

from broker.keys.keyring import generate_keyring
from tests.flows.saml_peers import SpKeys, sp_config

REQUESTED = ("mail", "givenName", "sn")


def make_sp_keys(folder: Path) -> SpKeys:
    ring = generate_keyring(folder, "test sp", bits=2048)
    return SpKeys(ring.key_file, ring.cert_file)


def sp_metadata(
    entity_id: str,
    keys: SpKeys,
    *,
    sign_requests: bool = True,
    requested: tuple[str, ...] = REQUESTED,
    optional: tuple[str, ...] = (),
    display_name: str | None = None,
    organization: str | None = None,
    artifact_acs_only: bool = False,
    service_name: str | None = None,
    logo: str | None = None,
    privacy_url: str | None = None,
) -> str:
    """The SP's metadata as pysaml2 publishes it.

    ``display_name``, ``logo`` and ``privacy_url`` go into ``mdui:UIInfo`` (DisplayName, Logo,
    PrivacyStatementURL), ``service_name`` into ``AttributeConsumingService/ServiceName`` (published only with
    requested attributes), ``organization`` into ``md:Organization``; ``artifact_acs_only`` leaves the SP
    without an HTTP-POST AssertionConsumerService.
    """
    conf = sp_config(entity_id, keys, None, sign_requests=sign_requests, requested=requested)
    if optional:
        conf.setattr("sp", "optional_attributes", list(optional))
    ui_info: dict[str, Any] = {}
    if display_name:
        ui_info["display_name"] = [{"text": display_name, "lang": "en"}]
    if logo:
        ui_info["logo"] = {"text": logo, "width": "64", "height": "64"}
    if privacy_url:
        ui_info["privacy_statement_url"] = [{"text": privacy_url, "lang": "en"}]
    if ui_info:
        conf.setattr("sp", "ui_info", ui_info)
    if service_name:
        conf.name = service_name
    if organization:
        conf.organization = {
            "name": [(organization, "en")],
            "display_name": [(organization, "en")],
            "url": [("https://city.example.org", "en")],
        }
    if artifact_acs_only:
        conf.setattr("sp", "endpoints",
                     {"assertion_consumer_service": [(entity_id + "/acs", BINDING_HTTP_ARTIFACT)]})
    return bytes(create_metadata_string(None, config=conf, valid=24)).decode()


def write_sp_metadata(path: Path, entity_id: str, keys: SpKeys, **options: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(sp_metadata(entity_id, keys, **options))
    return path
