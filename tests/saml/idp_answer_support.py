"""The broker's SAML IdP answering one registered SP, without the web app: for the Response-signing tests and
``bench/saml_sign_bench.py``.

The SP is a stock pysaml2 ``Saml2Client`` (``tests.flows.saml_peers.TestSp``) verifying with the ``xmlsec1``
program; ``xmlsec1_verifies`` runs ``xmlsec1 --verify`` on one signed element, as an SP with no pysaml2 would.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broker.core.model import Account, LoginRequest, LoginResult, Protocol
from broker.core.outcomes import PostForm
from broker.downstream.saml_server import IdpServers, SamlIdpSettings
from broker.keys.keyring import generate_keyring
from broker.registry.saml_sps import SP_FOLDER, load_sp_catalog
from broker.saml.catalog import SpCatalog
from tests.flows.saml_peers import TestSp
from tests.sp_metadata import make_sp_keys

IDP_ENTITY_ID = "https://broker.example.org/saml2/idp/metadata"
SP_ENTITY_ID = "https://app.example.org/saml"
RESPONSE_NODE = "urn:oasis:names:tc:SAML:2.0:protocol:Response"
ASSERTION_NODE = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"
RELEASED = {"email": "alice.liddell@example.org", "given_name": "Alice", "family_name": "Liddell"}


@dataclass(frozen=True)
class IdpWorld:
    servers: IdpServers
    catalog: SpCatalog
    sp: TestSp
    cert_file: Path

    def login(self) -> LoginResult:
        """A finished login for the SP, as the login journey hands it to the SAML adapter (a new request id)."""
        now = datetime.now(UTC)
        request = LoginRequest(downstream=SP_ENTITY_ID, protocol=Protocol.SAML, return_to=self.sp.acs_url,
                               request_id="id-" + secrets.token_hex(16), relay_state="rs-1",
                               requested_claims=frozenset(RELEASED))
        return LoginResult(request=request, account=Account("acct-1", now - timedelta(days=3)), released=RELEASED,
                           upstream="city", acr=None, auth_time=now - timedelta(seconds=5))


def make_idp_world(folder: Path, *, bits: int = 2048) -> IdpWorld:
    """Keys, one registered SP (pysaml2's own metadata for it), the IdP servers, and the SP trusting the IdP."""
    (folder / "idp").mkdir()
    ring = generate_keyring(folder / "idp", "broker idp", bits=bits)
    sp = TestSp(SP_ENTITY_ID, make_sp_keys(folder))
    (folder / "metadata" / SP_FOLDER).mkdir(parents=True)
    (folder / "metadata" / SP_FOLDER / "app.xml").write_text(sp.metadata())
    catalog = load_sp_catalog(folder / "metadata")
    assert SP_ENTITY_ID in catalog.sps, catalog.problems
    servers = IdpServers(SamlIdpSettings(
        entity_id=IDP_ENTITY_ID, sso_redirect_url="https://broker.example.org/saml2/idp/sso/redirect",
        sso_post_url="https://broker.example.org/saml2/idp/sso/post", key_file=ring.key_file,
        cert_file=ring.cert_file, xmlsec_binary=None, clock_skew=timedelta(seconds=60),
        request_max_age=timedelta(minutes=5), want_authn_requests_signed=False,
        assertion_lifetime=timedelta(minutes=5), sha1_allowed_for=frozenset(), pairwise_secret=b"p" * 32))
    sp.connect(servers.metadata_xml(catalog))
    return IdpWorld(servers, catalog, sp, ring.cert_file)


def posted_xml(form: PostForm) -> bytes:
    """The Response XML a PostForm carries in its SAMLResponse field."""
    return base64.b64decode(dict(form.fields)["SAMLResponse"])


def xmlsec1_verifies(xmlsec1: str, xml: bytes, cert_file: Path, node_name: str, node_id: str) -> bool:
    """``xmlsec1 --verify`` of the signature of the element ``node_id`` (a ``node_name``) with ``cert_file`` only."""
    with tempfile.NamedTemporaryFile(suffix=".xml") as document:
        document.write(xml)
        document.flush()
        run = subprocess.run(
            [xmlsec1, "--verify", "--enabled-key-data", "raw-x509-cert", "--pubkey-cert-pem", str(cert_file),
             "--id-attr:ID", node_name, "--node-id", node_id, document.name],
            capture_output=True, text=True, check=False, timeout=30)
    return run.returncode == 0 and "OK" in run.stderr
