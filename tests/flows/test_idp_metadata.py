"""The broker's published SAML IdP metadata (SAML 2.0 Metadata §2.3, §3.1): signed, verifiable with the
reference ``xmlsec1`` program against the broker's certificate, and naming the right endpoints."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from lxml import etree  # type: ignore[import-untyped]

from tests.flows.federation import Federation
from tests.peers.browser import Browser

MD = "{urn:oasis:names:tc:SAML:2.0:metadata}"
DS = "{http://www.w3.org/2000/09/xmldsig#}"


def _verify_with_xmlsec1(document: Path, cert: Path) -> subprocess.CompletedProcess[str]:
    xmlsec1 = shutil.which("xmlsec1")
    assert xmlsec1, "xmlsec1 is needed for this cross-check (apt-get install xmlsec1)"
    return subprocess.run(
        [xmlsec1, "--verify", "--pubkey-cert-pem", str(cert), "--id-attr:ID",
         "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor", "--enabled-reference-uris", "empty,same-doc",
         str(document)], capture_output=True, text=True, check=False)


def test_metadata_is_signed_and_verifies_with_xmlsec1(federation: Federation, browser: Browser,
                                                      tmp_path: Path) -> None:
    page = browser.get(federation.url + "/saml2/idp/metadata")
    assert page.headers["Content-Type"].startswith("application/samlmetadata+xml")
    document = tmp_path / "idp.xml"
    document.write_bytes(page.content)
    cert = federation.folder / "certs" / "signing.crt"

    assert _verify_with_xmlsec1(document, cert).returncode == 0

    tampered = tmp_path / "tampered.xml"
    tampered.write_bytes(page.content.replace(b"/saml2/idp/sso/post", b"/evil/sso/post"))
    assert _verify_with_xmlsec1(tampered, cert).returncode != 0


def test_metadata_names_entity_endpoints_and_certificate(federation: Federation, browser: Browser) -> None:
    root = etree.fromstring(browser.get(federation.url + "/saml2/idp/metadata").content)

    assert root.get("entityID") == federation.url + "/saml2/idp/metadata"
    assert root.get("validUntil")
    idp = root.find(f"{MD}IDPSSODescriptor")
    assert idp is not None
    locations = {(s.get("Binding").rsplit(":", 1)[-1], s.get("Location")) for s in idp.iter(f"{MD}SingleSignOnService")}
    assert locations == {("HTTP-Redirect", federation.url + "/saml2/idp/sso/redirect"),
                         ("HTTP-POST", federation.url + "/saml2/idp/sso/post")}
    published = idp.findtext(f".//{MD}KeyDescriptor/{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
    pem = (federation.folder / "certs" / "signing.crt").read_text()
    body = "".join(line for line in pem.splitlines() if "CERTIFICATE" not in line)
    assert published is not None and "".join(published.split()) == body
