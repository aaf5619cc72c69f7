"""The discovery page with a federation's IdPs (issue 4): searchable by their metadata names, with logos, and
the Identity Provider Discovery Service Protocol for an external discovery service.

The federation is an aggregate of 40 IdPs from ``tests.registry.aggregate`` beside the real pysaml2 IdP "city";
choosing one of them sends the browser there with a signed AuthnRequest.
"""

from __future__ import annotations

import base64
import zlib
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import lxml.html  # type: ignore[import-untyped]
import requests

from tests.flows.saml_to_saml_support import to_the_app
from tests.flows.saml_upstream import saml_federation
from tests.peers.browser import Browser
from tests.registry.aggregate import entity_id, make_aggregate, make_entity_certs

QUEBEC = 7


def _aggregate() -> bytes:
    return make_aggregate(40, None, make_entity_certs(2), names={QUEBEC: ("City of Québec", "Ville de Québec")})


def _forms(page: requests.Response) -> list[lxml.html.FormElement]:
    return list(lxml.html.fromstring(page.text).forms)


def test_search_finds_an_idp_by_its_name_without_accents(tmp_path: Path, key_folder: Path, browser: Browser) -> None:
    with saml_federation(tmp_path, key_folder, more_metadata=_aggregate()) as (fed, _):
        _, page = fed.login(browser, "sp1")
        assert "Find your organisation" in page.text
        found = browser.submit(page, {"q": "quebec"}, form=next(
            i for i, f in enumerate(_forms(page)) if (f.method or "GET").upper() == "GET"))

        assert found.status_code == 200
        assert "City of Québec" in found.text and "University of Example 3" not in found.text
        assert f'https://idp{QUEBEC}.example.org/logo.png' in found.text  # its https logo, not the http one
        assert "img-src 'self' data: https:" in found.headers["Content-Security-Policy"]
        form = next(i for i, f in enumerate(_forms(found)) if f.xpath(".//input[@name='entityID']"))
        sent = browser.submit(found, form=form, follow=False)

        location = sent.headers["Location"]
        assert location.startswith(f"https://idp{QUEBEC}.example.org/sso/redirect?")
        query = parse_qs(urlsplit(location).query)
        assert {"SAMLRequest", "RelayState", "SigAlg", "Signature"} <= query.keys()
        request_xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
        assert f'Destination="https://idp{QUEBEC}.example.org/sso/redirect"'.encode() in request_xml


def test_a_hint_names_a_federation_idp_by_entity_id(tmp_path: Path, key_folder: Path, browser: Browser) -> None:
    with saml_federation(tmp_path, key_folder, more_metadata=_aggregate()) as (fed, _):
        _, location = fed.sps["sp1"].redirect_request()
        sent = browser.get(location + "&idp_hint=" + entity_id(QUEBEC), follow=False)

        assert sent.headers["Location"].startswith(f"https://idp{QUEBEC}.example.org/sso/redirect?")


def test_an_external_discovery_service_returns_the_choice(tmp_path: Path, key_folder: Path,
                                                          browser: Browser) -> None:
    with saml_federation(tmp_path, key_folder, more_metadata=_aggregate()) as (fed, city):
        (fed.folder / "broker.toml").write_text((fed.folder / "broker.toml").read_text()
                                                + '\n[saml]\ndiscovery_url = "https://ds.federation.example/ds"\n')
        from broker.config.settings import load_settings

        settings = load_settings(fed.folder / "broker.toml", environ={})
        fed.app.extensions["broker"].settings = settings
        _, location = fed.sps["sp1"].redirect_request()
        to_ds = browser.get(urljoin(fed.url, browser.get(location, follow=False).headers["Location"]), follow=False)

        ds = urlsplit(to_ds.headers["Location"])
        params = {k: v[0] for k, v in parse_qs(ds.query).items()}
        assert f"{ds.scheme}://{ds.netloc}{ds.path}" == "https://ds.federation.example/ds"
        assert params["entityID"] == fed.url + "/saml2/sp/metadata" and params["returnIDParam"] == "entityID"
        assert city.idp is not None
        # the discovery service sends the person back with the chosen IdP (IdP Discovery Protocol §2.4.1)
        back = browser.get(params["return"], params={"entityID": city.idp.entity_id})
        answer = to_the_app(browser, back)
        assert "SAMLResponse" in browser.form_fields(answer)
        assert fed.accounts() == 1
